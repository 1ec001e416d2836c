"""What runs inside each training process of a ``DistributedTrainer``, and what the launch needs around it.

Each process runs the unchanged ``Trainer`` on its share of every global batch; the main one
also forwards its events through a queue to the launching kernel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from workbench.training.config import TaskName, TrainConfig
from workbench.training.distributed import SharedFlags
from workbench.training.events import Callback, Control, MainProcessCallback, TrainState

if TYPE_CHECKING:
    from workbench.models import ModelBundle
    from workbench.training.run import Run

__all__ = ["EventForwarder", "WorkerSpec", "free_port", "fresh_accelerate_state", "process_rank", "run_worker"]


class EventForwarder(Callback):
    """In the main training process: every event, with the state, onto the queue to the launching kernel."""

    def __init__(self, queue: Any, rank: int) -> None:
        self.queue, self.rank = queue, rank

    def _send(self, kind: str, state: TrainState, payload: Any = None) -> None:
        self.queue.put((kind, self.rank, state.to_dict(), payload))

    def on_train_begin(self, trainer: Run, state: TrainState, control: Control) -> None:
        self._send("begin", state, list(trainer.history.records))  # a resumed run's earlier records too

    def on_log(self, trainer: Run, state: TrainState, control: Control, logs: dict[str, Any]) -> None:
        self._send("log", state, logs)

    def on_evaluate(self, trainer: Run, state: TrainState, control: Control, metrics: dict[str, Any]) -> None:
        self._send("evaluate", state, {"kind": "eval", "step": state.step, **metrics})

    def on_save(self, trainer: Run, state: TrainState, control: Control, path: str) -> None:
        self._send("save", state, path)

    def on_pause(self, trainer: Run, state: TrainState, control: Control) -> None:
        self._send("pause", state)

    def on_resume(self, trainer: Run, state: TrainState, control: Control) -> None:
        self._send("resume", state)

    def on_train_end(self, trainer: Run, state: TrainState, control: Control) -> None:
        self._send("end", state)


@dataclasses.dataclass
class WorkerSpec:
    """What each training process needs; handed over by fork, never pickled."""

    bundle: ModelBundle
    task: TaskName
    train: Any
    eval: Any
    config: TrainConfig
    callbacks: Sequence[Callback]
    flags: SharedFlags
    queue: Any
    resume_from: str | None
    recorders: Sequence[MainProcessCallback] = ()
    teacher: ModelBundle | None = None


def run_worker(spec: WorkerSpec) -> dict[str, Any]:
    """One training process: the unchanged Trainer on its share of the data."""
    from workbench.training.loop import Trainer

    # A kernel interrupt reaches every process of the kernel's group; the launching kernel
    # turns it into Stop for all of them (a process stopped alone would leave the rest waiting).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    share_cpu_threads()
    try:
        trainer = Trainer(
            spec.bundle,
            spec.task,
            spec.train,
            spec.eval,
            config=spec.config,
            callbacks=list(spec.callbacks),
            teacher=spec.teacher,
        )
        trainer.shared_flags = spec.flags
        if trainer.is_main:
            # Probe recorders run here, on the live model, and send each record to the kernel's copy.
            for index, recorder in enumerate(spec.recorders):
                recorder.listeners = [_probe_sender(spec.queue, trainer.rank, index)]
                trainer.callbacks.add(cast(Callback, recorder))
            trainer.callbacks.add(EventForwarder(spec.queue, trainer.rank))
        if spec.resume_from:
            trainer.resume_from(spec.resume_from)
        trainer.fit()
    except BaseException as error:
        spec.queue.put(("error", process_rank(), None, str(error) or type(error).__name__))
        raise
    return {"rank": trainer.rank, "status": trainer.state.status, "step": trainer.state.step}


def _probe_sender(queue: Any, rank: int, index: int) -> Callable[[dict[str, Any]], None]:
    """A listener that puts each record of the ``index``-th recorder on the queue to the kernel."""

    def send(record: dict[str, Any]) -> None:
        queue.put(("probe", rank, index, record))

    return send


def share_cpu_threads() -> None:
    """Give each process its share of the CPU's cores (what Accelerate would do, with a warning in every process)."""
    import psutil
    import torch

    if "OMP_NUM_THREADS" in os.environ or torch.cuda.is_available():
        return
    share = max(1, (psutil.cpu_count(logical=False) or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    os.environ["OMP_NUM_THREADS"] = str(share)
    torch.set_num_threads(share)


def process_rank() -> int:
    """This process's rank in the run (0 outside one)."""
    return int(os.environ.get("RANK", "0"))


@contextlib.contextmanager
def fresh_accelerate_state(*classes: Any) -> Iterator[None]:
    """Launch with no Accelerate state, as ``notebook_launcher`` demands, and give this kernel's back after.

    An earlier single-process run in this kernel leaves Accelerate's process-wide state set.
    The state lives in one dict per class that each instance shares; swapping in a new dict
    leaves earlier Accelerators working on the old one, and the forked processes start clean.
    """
    saved = [cls._shared_state for cls in classes]
    for cls, old in zip(classes, saved, strict=True):
        cls._shared_state = type(old)()
    try:
        yield
    finally:
        for cls, old in zip(classes, saved, strict=True):
            cls._shared_state = old


def free_port() -> int:
    """A TCP port free on this machine now (another program may take it before it is bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
