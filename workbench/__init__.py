"""workbench: train and explain transformer language models from a notebook, offline.

The engine (``models``, ``data``, ``training``, ``explain``) never imports Jupyter; the views
live in ``workbench.ui``. Names are imported on first use, so ``import workbench`` (and the
``workbench`` command) starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Callback": "workbench.training",
    "DistributedTrainer": "workbench.training",
    "LabelledData": "workbench.data",
    "ModelBundle": "workbench.models",
    "TrainConfig": "workbench.training",
    "Trainer": "workbench.training",
    "WorkbenchError": "workbench.errors",
    "attention": "workbench.explain",
    "attribute": "workbench.explain",
    "fetch_asset": ("workbench.assets", "fetch"),
    "fill_mask": "workbench.explain",
    "generate": "workbench.explain",
    "load_corpus": "workbench.data",
    "load_labelled": "workbench.data",
    "load_model": "workbench.models",
    "logit_lens": "workbench.explain",
    "next_token": "workbench.explain",
    "train_tokenizer": "workbench.data",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
