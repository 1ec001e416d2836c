"""Training: one loop for masked-LM and causal-LM pretraining and for fine-tuning.

Names are imported on first use, so reading ``TrainConfig`` (the CLI does, for its flags)
does not load torch. The ``TYPE_CHECKING`` block below shows them to editors and type checkers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.exports import load_export

if TYPE_CHECKING:
    from workbench.training.callbacks import Checkpointer, ConsolePrinter, EarlyStopping, MetricsWriter
    from workbench.training.config import TASKS, TaskName, TrainConfig
    from workbench.training.events import Callback, Control, RunStatus, TrainState
    from workbench.training.history import TrainingHistory
    from workbench.training.job import TrainingJob
    from workbench.training.launch import DistributedJob, DistributedTrainer
    from workbench.training.loop import Trainer
    from workbench.training.plan import RunPlan, plan_run
    from workbench.training.run import Run

_EXPORTS: dict[str, str | tuple[str, str]] = {
    "TASKS": "config",
    "TaskName": "config",
    "TrainConfig": "config",
    "Callback": "events",
    "Control": "events",
    "RunStatus": "events",
    "TrainState": "events",
    "Checkpointer": "callbacks",
    "ConsolePrinter": "callbacks",
    "EarlyStopping": "callbacks",
    "MetricsWriter": "callbacks",
    "TrainingHistory": "history",
    "TrainingJob": "job",
    "DistributedTrainer": "launch",
    "DistributedJob": "launch",
    "Trainer": "loop",
    "RunPlan": "plan",
    "plan_run": "plan",
    "Run": "run",
}

__all__ = [
    "TASKS",
    "Callback",
    "Checkpointer",
    "ConsolePrinter",
    "Control",
    "DistributedJob",
    "DistributedTrainer",
    "EarlyStopping",
    "MetricsWriter",
    "Run",
    "RunPlan",
    "RunStatus",
    "TaskName",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "TrainingHistory",
    "TrainingJob",
    "plan_run",
]


def __getattr__(name: str) -> Any:
    return load_export(__name__, _EXPORTS, globals(), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
