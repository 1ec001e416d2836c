"""workbench: train and explain transformer language models from a notebook, offline.

The engine (``models``, ``data``, ``training``, ``explain``) never imports Jupyter; the views
live in ``workbench.ui``. Names are imported on first use, so ``import workbench`` (and the
``workbench`` command) starts fast. The ``TYPE_CHECKING`` block below shows them to editors and
type checkers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.exports import load_export

if TYPE_CHECKING:
    from workbench.assets import fetch as fetch_asset
    from workbench.data import LabelledData, load_corpus, load_labelled, train_tokenizer
    from workbench.errors import WorkbenchError
    from workbench.explain.ablation import ablate
    from workbench.explain.attention import attention
    from workbench.explain.attribution import attribute
    from workbench.explain.budget import set_memory_budget
    from workbench.explain.generate import generate
    from workbench.explain.lens import logit_lens
    from workbench.explain.lens_quality import lens_quality
    from workbench.explain.patching import patch
    from workbench.explain.probe import fill_mask, next_token
    from workbench.explain.probing import probe_layers
    from workbench.explain.steering import steering_vector
    from workbench.explain.tuned_lens import load_tuned_lens
    from workbench.models import ModelBundle, load_model
    from workbench.training import Callback, DistributedTrainer, TrainConfig, Trainer

__version__ = "0.1.0"

_EXPORTS: dict[str, str | tuple[str, str]] = {
    "Callback": "workbench.training",
    "DistributedTrainer": "workbench.training",
    "LabelledData": "workbench.data",
    "ModelBundle": "workbench.models",
    "TrainConfig": "workbench.training",
    "Trainer": "workbench.training",
    "WorkbenchError": "workbench.errors",
    "ablate": "workbench.explain",
    "attention": "workbench.explain",
    "attribute": "workbench.explain",
    "fetch_asset": ("workbench.assets", "fetch"),
    "fill_mask": "workbench.explain",
    "generate": "workbench.explain",
    "load_corpus": "workbench.data",
    "load_labelled": "workbench.data",
    "lens_quality": "workbench.explain",
    "load_model": "workbench.models",
    "load_tuned_lens": "workbench.explain",
    "logit_lens": "workbench.explain",
    "next_token": "workbench.explain",
    "patch": "workbench.explain",
    "probe_layers": "workbench.explain",
    "set_memory_budget": "workbench.explain",
    "steering_vector": "workbench.explain",
    "train_tokenizer": "workbench.data",
}

__all__ = [
    "Callback",
    "DistributedTrainer",
    "LabelledData",
    "ModelBundle",
    "TrainConfig",
    "Trainer",
    "WorkbenchError",
    "ablate",
    "attention",
    "attribute",
    "fetch_asset",
    "fill_mask",
    "generate",
    "lens_quality",
    "load_corpus",
    "load_labelled",
    "load_model",
    "load_tuned_lens",
    "logit_lens",
    "next_token",
    "patch",
    "probe_layers",
    "set_memory_budget",
    "steering_vector",
    "train_tokenizer",
]


def __getattr__(name: str) -> Any:
    return load_export(__name__, _EXPORTS, globals(), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
