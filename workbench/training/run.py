"""``Run``: what a view or a callback reads from a run, in one process (``Trainer``) or several.

``Trainer`` and ``DistributedTrainer`` both have these members, so the dashboard, the console
printer and the checkpointer take either without asking which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from workbench.models import ModelBundle
    from workbench.training.config import TrainConfig
    from workbench.training.events import CallbackList, Control, TrainState
    from workbench.training.history import TrainingHistory
    from workbench.training.job import TrainingJob
    from workbench.training.tasks import Task

__all__ = ["Run"]


class Run(Protocol):
    """A training run as its watchers see it: where it is, what it logged, and the buttons' methods."""

    bundle: ModelBundle
    config: TrainConfig
    task: Task
    state: TrainState
    control: Control
    history: TrainingHistory
    callbacks: CallbackList

    def fit(self) -> TrainingHistory:
        """Train until done or stopped; return the history."""
        ...

    def start(self) -> TrainingJob:
        """Train in the background; return the job at once."""
        ...

    def pause(self) -> None: ...

    def resume_running(self) -> None: ...

    def stop(self) -> None: ...


if TYPE_CHECKING:
    from workbench.training.launch import DistributedTrainer
    from workbench.training.loop import Trainer

    def _both_are_runs(trainer: Trainer, distributed: DistributedTrainer) -> tuple[Run, Run]:
        return trainer, distributed  # the type checker holds both classes to the protocol
