"""Faults injected into a training run from outside the loop: the tests that check nothing is lost use them."""

from __future__ import annotations

from typing import Any

import torch

from workbench.training import Trainer


def nan_loss_from(trainer: Trainer, step: int) -> None:
    """Make the training loss NaN from optimizer step ``step`` on, wrapping the task's loss (evaluation is spared)."""
    loss = trainer.task.loss

    def poisoned(model: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        value, tokens = loss(model, batch)
        if model.training and trainer.state.step + 1 >= step:
            value = value * float("nan")
        return value, tokens

    trainer.task.loss = poisoned  # type: ignore[method-assign]
