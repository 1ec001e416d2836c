"""Built-in callbacks: the console printer, the metrics writer, the checkpointer, early stopping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.training.events import Callback, Control, TrainState
from workbench.training.history import METRICS_FILE
from workbench.training.metrics import finite_or_none, improves

if TYPE_CHECKING:
    from workbench.training.run import Run

__all__ = ["Checkpointer", "ConsolePrinter", "EarlyStopping", "MetricsWriter"]


class ConsolePrinter(Callback):
    """A ``tqdm.auto`` progress bar with the loss, learning rate and speed; a line per evaluation."""

    def __init__(self) -> None:
        self.bar: Any = None

    def on_train_begin(self, trainer: Run, state: TrainState, control: Control) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=state.max_steps,
            initial=state.step,
            desc=f"{trainer.task.name} {trainer.bundle.name}",
            unit="step",
            dynamic_ncols=True,
        )

    def on_log(self, trainer: Run, state: TrainState, control: Control, logs: dict[str, Any]) -> None:
        if self.bar is None:
            return
        self.bar.n = state.step
        self.bar.set_postfix(
            loss=f"{state.smoothed_loss:.4f}",
            lr=f"{state.learning_rate:.2e}",
            tok_s=f"{state.tokens_per_second:,.0f}",
            refresh=False,
        )
        self.bar.refresh()

    def on_evaluate(self, trainer: Run, state: TrainState, control: Control, metrics: dict[str, Any]) -> None:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        self._write(f"step {state.step}: {shown}")

    def on_train_end(self, trainer: Run, state: TrainState, control: Control) -> None:
        if self.bar is not None:
            self.bar.n = state.step
            self.bar.close()
            self.bar = None
        self._write(f"{state.message} ({state.elapsed_seconds:.1f} s, {state.precision})")

    def _write(self, line: str) -> None:
        from tqdm.auto import tqdm

        tqdm.write(line)


class MetricsWriter(Callback):
    """Appends every log and evaluation record to ``output_dir/metrics.jsonl``."""

    def on_train_begin(self, trainer: Run, state: TrainState, control: Control) -> None:
        self.path = Path(trainer.config.output_dir or ".") / METRICS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _append(self, record: dict[str, Any]) -> None:
        clean = {k: finite_or_none(v) for k, v in record.items()}
        with open(self.path, "a") as f:
            f.write(json.dumps(clean) + "\n")

    def on_log(self, trainer: Run, state: TrainState, control: Control, logs: dict[str, Any]) -> None:
        self._append(logs)

    def on_evaluate(self, trainer: Run, state: TrainState, control: Control, metrics: dict[str, Any]) -> None:
        self._append({"kind": "eval", "step": state.step, **metrics})


class Checkpointer(Callback):
    """Asks for a save every ``save_every`` steps; the loop saves once every callback's ``on_step_end`` has
    run (as it does for a Save button's ``control.should_save``), so the checkpoint holds what they added."""

    def on_step_end(self, trainer: Run, state: TrainState, control: Control) -> None:
        every = trainer.config.save_every
        if every and state.step % every == 0:
            control.should_save = True


class EarlyStopping(Callback):
    """Stops when the eval metric has not improved for ``patience`` evaluations."""

    def __init__(self, metric: str = "eval_loss", patience: int = 3, min_delta: float = 0.0) -> None:
        self.metric, self.patience, self.min_delta = metric, patience, min_delta
        self.best: float | None = None
        self.bad_evaluations = 0

    def on_evaluate(self, trainer: Run, state: TrainState, control: Control, metrics: dict[str, Any]) -> None:
        value = metrics.get(self.metric)
        if value is None:
            return
        if improves(self.metric, value, self.best, self.min_delta):
            self.best, self.bad_evaluations = value, 0
        else:
            self.bad_evaluations += 1
            if self.bad_evaluations >= self.patience:
                control.should_stop = True
