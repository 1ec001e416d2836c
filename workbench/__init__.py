"""workbench: train and explain transformer language models from a notebook, offline.

The engine (``models``, ``data``, ``training``, ``explain``) never imports Jupyter; the views
live in ``workbench.ui``.
"""

from workbench.assets import fetch as fetch_asset
from workbench.data import LabelledData, load_corpus, load_labelled, train_tokenizer
from workbench.errors import WorkbenchError
from workbench.explain import fill_mask, next_token
from workbench.models import ModelBundle, load_model
from workbench.training import Callback, TrainConfig, Trainer

__version__ = "0.1.0"

__all__ = [
    "Callback", "LabelledData", "ModelBundle", "TrainConfig", "Trainer", "WorkbenchError", "fetch_asset",
    "fill_mask", "load_corpus", "load_labelled", "load_model", "next_token", "train_tokenizer",
]
