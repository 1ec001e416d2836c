"""What a training run tells its callbacks (``TrainState``) and what they may ask of it (``Control``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Callback", "CallbackList", "Control", "TrainState"]


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
    mfu: float = math.nan  # model FLOPs utilisation, 0..1
    elapsed_seconds: float = 0.0
    eval_metrics: dict = field(default_factory=dict)
    best_metric: float | None = None
    best_checkpoint: str | None = None
    last_checkpoint: str | None = None
    status: str = "created"  # created, running, paused, stopped, finished, nan, failed
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

    def to_dict(self) -> dict:
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
    """

    def on_train_begin(self, trainer: Any, state: TrainState, control: Control) -> None: ...
    def on_step_end(self, trainer: Any, state: TrainState, control: Control) -> None: ...
    def on_log(self, trainer: Any, state: TrainState, control: Control, logs: dict) -> None: ...
    def on_evaluate(self, trainer: Any, state: TrainState, control: Control, metrics: dict) -> None: ...
    def on_save(self, trainer: Any, state: TrainState, control: Control, path: str) -> None: ...
    def on_pause(self, trainer: Any, state: TrainState, control: Control) -> None: ...
    def on_resume(self, trainer: Any, state: TrainState, control: Control) -> None: ...
    def on_train_end(self, trainer: Any, state: TrainState, control: Control) -> None: ...
    def on_exception(self, trainer: Any, state: TrainState, control: Control, error: BaseException) -> None: ...


class CallbackList:
    """Calls every callback in order for each event."""

    def __init__(self, callbacks: list[Callback]):
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"Callbacks must subclass workbench.training.Callback; got {type(cb).__name__}.")
        self.callbacks = list(callbacks)

    def add(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def fire(self, event: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(*args)
