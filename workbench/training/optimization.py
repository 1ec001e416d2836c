"""The optimizer and the learning-rate schedule of a run: AdamW with decoupled weight decay, warmup then decay."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from workbench.training.config import Schedule, TrainConfig

__all__ = ["lr_schedule", "make_optimizer", "parameter_groups"]


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """The trainable weights in two groups: matrices with ``weight_decay``, biases and norms without."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # No weight decay on biases and norms: it only shrinks what should stay free.
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_schedule(kind: Schedule, warmup: int, total: int) -> Callable[[int], float]:
    """The learning rate's factor at each step: a linear warmup over ``warmup`` steps, then ``kind`` to ``total``."""

    def linear(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    def cosine(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    def constant(step: int) -> float:
        return (step + 1) / (warmup + 1) if step < warmup else 1.0

    return {"linear": linear, "cosine": cosine, "constant": constant}[kind]


def make_optimizer(
    model: torch.nn.Module, config: TrainConfig, max_steps: int, warmup_steps: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over ``model``'s trainable weights and its schedule, seeded by the config."""
    torch.manual_seed(config.seed)
    optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(config.schedule, warmup_steps, max_steps))
    return optimizer, scheduler
