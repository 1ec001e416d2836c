"""Where a language model keeps the way from a hidden state to logits: its final norm and its output head.

The logit lens and the tuned lens read every layer through these; ``own_head`` is what the model itself
applies to its last hidden state (whose final norm, where there is one, the base model has already run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from workbench.errors import ProbeError

__all__ = ["final_norm_and_head", "masked_lm_parts", "own_head"]

Head = Callable[[torch.Tensor], torch.Tensor]


def final_norm_and_head(model: Any) -> tuple[Head | None, Head]:
    """(final norm or None, head): the model's own way from a layer's hidden state to logits.

    BERT's layers each end in a LayerNorm, so its masked-LM head does it all (no norm); ModernBERT keeps
    a final norm in its base model, then a prediction head and a decoder; Llama- and GPT-2-style models a
    final norm and an unembedding. Raises ``ProbeError`` for a model whose head is not known.
    """
    children = dict(model.named_children())
    if "cls" in children:
        cls: Head = model.cls
        return None, cls
    if "head" in children and "decoder" in children:
        norm = getattr(model.model, "final_norm", None)
        return norm, lambda h: model.decoder(model.head(h))
    base = getattr(model, "model", None) or getattr(model, "transformer", None)
    norm = getattr(base, "norm", None) or getattr(base, "ln_f", None)
    head = model.get_output_embeddings()
    if norm is None or head is None:
        raise ProbeError(
            f"The lens does not know where {type(model).__name__} keeps its final norm and "
            "output head; it supports BERT, ModernBERT, Llama-style and GPT-2-style language models."
        )
    return norm, head


def own_head(model: Any) -> Head:
    """How the model turns its last hidden state into logits (the last row of a lens)."""
    children = dict(model.named_children())
    if "cls" in children:  # BERT's MLM head
        cls: Head = model.cls
        return cls
    if "head" in children and "decoder" in children:  # ModernBERT: the final norm is inside the base model
        return lambda h: model.decoder(model.head(h))
    unembedding: Head = model.get_output_embeddings()
    return unembedding


def masked_lm_parts(model: Any) -> tuple[Any, Any] | None:
    """(encoder, output head) of a masked LM whose head can run on chosen positions alone (the masked ones: the
    same logits there for a fraction of the work); None for an architecture whose head is not known."""
    base = getattr(model, "base_model", None)
    if base is None or base is model:
        return None
    for attr in ("cls", "lm_head"):  # BERT, RoBERTa and their kin
        if getattr(model, attr, None) is not None:
            return base, getattr(model, attr)
    if getattr(model, "head", None) is not None and getattr(model, "decoder", None) is not None:  # ModernBERT
        return base, torch.nn.Sequential(model.head, model.decoder)
    return None
