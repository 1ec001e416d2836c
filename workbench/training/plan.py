"""``plan_run``: how a run's data divides into micro-batches and steps, checked once for one process or several.

``Trainer`` and ``DistributedTrainer`` both call it, so the same mistake gets the same
sentence (and the same error class) whichever runs it, and both count the same steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from workbench.errors import DataError
from workbench.training.config import TrainConfig

__all__ = ["RunPlan", "plan_run"]


@dataclass(frozen=True)
class RunPlan:
    """The sizes of a run: how many examples make a micro-batch, an epoch and the whole run."""

    examples: int  # in the training data
    processes: int
    global_batch: int  # examples in one micro-batch over every process: batch_size x processes
    micro_batches_per_epoch: int
    steps_per_epoch: int  # optimizer steps: micro-batches // gradient_accumulation_steps, at least 1
    max_steps: int
    warmup_steps: int


def plan_run(config: TrainConfig, train_examples: int, eval_examples: int | None = None, processes: int = 1) -> RunPlan:
    """Check that the data fits the batches and count the run's steps.

    ``max_steps`` is the config's when set, else ``epochs`` x steps per epoch, rounded up.
    Raises ``DataError`` when the training or evaluation data is empty, or when one global
    batch (``batch_size`` per process) is larger than the training data.
    """
    if train_examples == 0:
        raise DataError("The training data is empty; give at least one batch of examples.")
    global_batch = config.batch_size * processes
    if global_batch > train_examples:
        per = f" per process x {processes} processes" if processes > 1 else ""
        raise DataError(
            f"batch_size {config.batch_size}{per} is larger than the training data ({train_examples} examples); "
            f"use batch_size={max(1, train_examples // processes)} or less, or more data."
        )
    if eval_examples == 0:
        raise DataError("The evaluation data is empty; pass eval_data=None to skip evaluation.")
    micro_batches = math.ceil(train_examples / global_batch)
    steps_per_epoch = max(1, micro_batches // config.gradient_accumulation_steps)
    max_steps = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    return RunPlan(
        examples=train_examples,
        processes=processes,
        global_batch=global_batch,
        micro_batches_per_epoch=micro_batches,
        steps_per_epoch=steps_per_epoch,
        max_steps=max_steps,
        warmup_steps=int(config.warmup_ratio * max_steps),
    )
