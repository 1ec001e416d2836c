"""Training: one loop for masked-LM and causal-LM pretraining and for fine-tuning.

Names are imported on first use, so reading ``TrainConfig`` (the CLI does, for its flags)
does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TASKS": "config",
    "TrainConfig": "config",
    "Callback": "events",
    "Control": "events",
    "TrainState": "events",
    "Checkpointer": "callbacks",
    "ConsolePrinter": "callbacks",
    "EarlyStopping": "callbacks",
    "MetricsWriter": "callbacks",
    "TrainingJob": "job",
    "DistributedTrainer": "launch",
    "DistributedJob": "launch",
    "Trainer": "loop",
    "TrainingHistory": "loop",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"workbench.training.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
