"""``BatchFeed``: the batches one process trains and evaluates on, collated and on its device."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from workbench.training.config import TrainConfig
from workbench.training.plan import RunPlan
from workbench.training.sharding import evaluation_batches, micro_batch_indices, process_share
from workbench.training.tasks import Task

__all__ = ["BatchFeed"]

_EVAL_SEED_OFFSET = 12345  # evaluation masks come from their own seed, the same at every evaluation


class BatchFeed:
    """Turns this process's share of the data into batches on ``device`` (see ``workbench.training.sharding``)."""

    def __init__(
        self,
        task: Task,
        collate: Callable[[list[Any]], dict[str, Any]],
        *,
        train_dataset: Any,
        eval_dataset: Any,
        config: TrainConfig,
        plan: RunPlan,
        rank: int,
        device: torch.device,
    ) -> None:
        self.task, self.collate, self.config, self.plan = task, collate, config, plan
        self.train_dataset, self.eval_dataset = train_dataset, eval_dataset
        self.rank, self.device = rank, device

    def training(self, start: int) -> Iterator[dict[str, Any]]:
        """This process's micro-batches from global micro-batch ``start`` on, without end."""
        indices = micro_batch_indices(
            lambda epoch: self.task.order(self.train_dataset, epoch, self.plan.global_batch),
            self.plan.micro_batches_per_epoch,
            self.config.batch_size,
            rank=self.rank,
            processes=self.plan.processes,
            start=start,
        )
        for batch in indices:
            yield self.to_device(self.collate([self.train_dataset[j] for j in batch]))

    def evaluation(self) -> list[dict[str, Any]]:
        """This process's share of the evaluation batches, masks drawn from a fixed seed so evaluations compare.

        Every process draws the same masks in the same order and keeps its own share; the
        random state of training is left as it was.
        """
        data = self.eval_dataset
        ranges = evaluation_batches(len(data), self.config.batch_size, self.config.eval_batches)
        rng = torch.get_rng_state()
        torch.manual_seed(self.config.seed + _EVAL_SEED_OFFSET)
        try:
            batches = [self.collate([data[j] for j in indices]) for indices in ranges]
        finally:
            torch.set_rng_state(rng)
        return [self.to_device(b) for b in process_share(batches, self.rank, self.plan.processes)]

    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v.to(self.device, non_blocking=True) if hasattr(v, "to") else v for k, v in batch.items()}
