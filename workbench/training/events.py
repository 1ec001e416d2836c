"""What a training run tells its callbacks (``TrainState``) and what they may ask of it (``Control``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from workbench.models import ModelBundle
    from workbench.training.run import Run

__all__ = ["Callback", "CallbackList", "Control", "MainProcessCallback", "RunStatus", "TrainState"]

RunStatus = Literal["created", "running", "paused", "stopped", "finished", "nan", "failed"]

# What a resumed run takes back from its checkpoint's TrainState.
_RESUMED_FIELDS = (
    "step",
    "epoch",
    "tokens_seen",
    "train_loss",
    "smoothed_loss",
    "learning_rate",
    "best_metric",
    "best_checkpoint",
    "eval_metrics",
    "elapsed_seconds",
)


@dataclass
class TrainState:
    """Where a run is. Read by callbacks; changed only by the Trainer."""

    step: int = 0  # optimizer steps taken
    max_steps: int = 0
    epoch: float = 0.0
    tokens_seen: int = 0
    train_loss: float = math.nan  # raw loss of the last logged step
    smoothed_loss: float = math.nan  # exponential moving average of the step losses
    learning_rate: float = 0.0
    grad_norm: float = math.nan
    tokens_per_second: float = 0.0
    mfu: float = math.nan  # model FLOPs utilisation, 0..1, of the peak ``mfu_basis`` names
    mfu_basis: str = ""  # "H100 bf16 data-sheet peak"; on a CPU "measured fp32 matmul peak"
    elapsed_seconds: float = 0.0
    eval_metrics: dict[str, Any] = field(default_factory=dict)
    best_metric: float | None = None
    best_checkpoint: str | None = None
    last_checkpoint: str | None = None
    status: RunStatus = "created"
    message: str = ""  # the status in words: "stopped at step 120", "NaN loss at step 57"
    precision: str = "fp32"
    device: str = "cpu"

    @property
    def progress(self) -> float:
        return self.step / self.max_steps if self.max_steps else 0.0

    @property
    def eta_seconds(self) -> float:
        if self.step == 0 or self.elapsed_seconds <= 0:
            return math.nan
        return (self.max_steps - self.step) * self.elapsed_seconds / self.step

    def restore(self, saved: dict[str, Any]) -> None:
        """Take back, from a checkpoint's state, where a resumed run continues from (not its status or device)."""
        for key in _RESUMED_FIELDS:
            if key in saved:
                setattr(self, key, saved[key])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["progress"], d["eta_seconds"] = self.progress, self.eta_seconds
        return d


@dataclass
class Control:
    """Requests from callbacks and buttons; the Trainer acts on them at the next step boundary."""

    should_stop: bool = False
    should_pause: bool = False
    should_save: bool = False
    should_evaluate: bool = False
    should_log: bool = False


class Callback:
    """Base class with an empty method per event; override the ones you need.

    Each receives the trainer, its ``TrainState`` and its ``Control``; a callback may
    change only ``Control``.

    ``runs_in_main_process``: a callback that needs the live model as it trains (a probe
    recorder) says so; a run of several processes then runs it in its main process and sends
    what it records back, instead of feeding it the main process's events in the kernel.
    """

    runs_in_main_process: bool = False

    def on_train_begin(self, trainer: Run, state: TrainState, control: Control) -> None: ...
    def on_step_end(self, trainer: Run, state: TrainState, control: Control) -> None: ...
    def on_log(self, trainer: Run, state: TrainState, control: Control, logs: dict[str, Any]) -> None: ...
    def on_evaluate(self, trainer: Run, state: TrainState, control: Control, metrics: dict[str, Any]) -> None: ...
    def on_save(self, trainer: Run, state: TrainState, control: Control, path: str) -> None: ...
    def on_pause(self, trainer: Run, state: TrainState, control: Control) -> None: ...
    def on_resume(self, trainer: Run, state: TrainState, control: Control) -> None: ...
    def on_train_end(self, trainer: Run, state: TrainState, control: Control) -> None: ...
    def on_exception(self, trainer: Run, state: TrainState, control: Control, error: BaseException) -> None: ...


class MainProcessCallback(Protocol):
    """What a callback with ``runs_in_main_process = True`` offers, so its records can come back to the kernel.

    In the main training process its ``listeners`` send each record it makes; in the kernel its
    own copy ``add``s them (and ``restore``s a resumed run's earlier ones). ``check`` refuses,
    before any process starts, a model it could not record from.
    """

    runs_in_main_process: bool
    listeners: list[Callable[[dict[str, Any]], None]]

    def check(self, bundle: ModelBundle) -> None: ...
    def add(self, record: dict[str, Any]) -> Any: ...
    def restore(self, records: Sequence[dict[str, Any]]) -> None: ...


class CallbackList:
    """Calls every callback in order for each event."""

    def __init__(self, callbacks: list[Callback]) -> None:
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"Callbacks must subclass workbench.training.Callback; got {type(cb).__name__}.")
        self.callbacks = list(callbacks)

    def add(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def fire(self, event: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(*args)
