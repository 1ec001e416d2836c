"""Ctrl-C in a run of several processes: it asks every process to stop at the same step, so they save together."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from workbench.training.events import Control

__all__ = ["restore_sigint", "stop_on_sigint"]


def stop_on_sigint(control: Control, processes: int) -> Any:
    """Under several processes (``accelerate launch``), make Ctrl-C set ``control.should_stop``.

    A terminal's Ctrl-C reaches each process at a different point of its step (and the
    launcher's agent sends another); raised there, they could never meet again to save.
    So it only sets Stop: the processes agree on it at the step's end and save together.
    A process that hangs is killed by the launcher's agent after its grace period.
    Returns the handler to give back to ``restore_sigint``, or None where nothing was changed
    (one process, a thread other than the main one, or a handler someone else installed).
    """
    if processes == 1 or threading.current_thread() is not threading.main_thread():
        return None
    before = signal.getsignal(signal.SIGINT)
    if before is not signal.default_int_handler:  # ignored (a notebook's worker) or someone else's
        return None

    def request_stop(signum: int, frame: FrameType | None) -> None:
        control.should_stop = True

    signal.signal(signal.SIGINT, request_stop)
    return before


def restore_sigint(before: Any) -> None:
    """Put back the handler ``stop_on_sigint`` replaced (nothing when it replaced none)."""
    if before is not None:
        signal.signal(signal.SIGINT, before)
