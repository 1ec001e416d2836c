"""``TrainingJob``: the training loop in a daemon thread, so a notebook kernel stays free."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from workbench.training.events import TrainState

if TYPE_CHECKING:
    from workbench.training.history import TrainingHistory
    from workbench.training.run import Run

__all__ = ["TrainingJob"]


class TrainingJob:
    """A run in a background thread, with ``pause()``, ``resume()``, ``stop()`` and ``wait()``.

    ``work`` is what the thread runs: the Trainer's loop, or the relay of a run in several
    processes. Every way of stopping goes through the loop's ``finally:``, which writes a checkpoint.
    """

    def __init__(self, trainer: Run, work: Callable[[], None]) -> None:
        self.trainer = trainer
        self.error: BaseException | None = None
        self._work = work
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._target, name="workbench-training", daemon=True)

    def start(self) -> TrainingJob:
        # Say "running" before the thread is scheduled, so a caller never reads a stale "created".
        self.trainer.state.status, self.trainer.state.message = "running", "starting…"
        # Cleared here, in the caller's thread, so a stop() issued right after start() is never lost.
        self.trainer.control.should_stop = False
        self._thread.start()
        return self

    def _target(self) -> None:
        try:
            self._work()
        except BaseException as error:  # kept and re-raised by wait(): a thread has nobody to raise to
            self.error = self.error or error  # the work may have set a clearer one first
        finally:
            self._done.set()

    @property
    def state(self) -> TrainState:
        return self.trainer.state

    @property
    def history(self) -> TrainingHistory:
        return self.trainer.history

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def pause(self) -> None:
        self.trainer.pause()

    def resume(self) -> None:
        """Un-pause the run (``Trainer.resume_from(path)`` is what loads a checkpoint)."""
        self.trainer.resume_running()

    def stop(self, wait: bool = True, timeout: float | None = None) -> bool:
        """Ask the loop to stop at the next step boundary (it saves first); wait for it by default."""
        self.trainer.stop()
        return self.wait(timeout) if wait else False

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends; True if it ended. Ctrl-C (a kernel interrupt) stops the run, then waits.

        Waits on an Event, not ``Thread.join()``: an interrupted join leaves the thread looking
        dead while it runs on. Re-raises an error the loop died of.
        """
        try:
            finished = self._done.wait(timeout)
        except KeyboardInterrupt:
            self.trainer.stop()
            finished = self._done.wait()
        if finished and self.error is not None:
            error, self.error = self.error, None
            raise error
        return finished

    def __repr__(self) -> str:
        return f"TrainingJob({self.state.message or self.state.status})"
