"""The model's output head: how many tokens it scores, and running it only at the positions a call reads.

A probe reads one or a few positions, yet the vocabulary projection at every position is a large
share of a forward pass on a small model. ``head_only_at`` gathers the hidden states before the head,
so the logits come back only where they are read.

Example::

    with inference(model), head_only_at(model, torch.tensor([[mask_position]])):
        logits = model(**enc).logits[0, 0]   # (vocab,)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["head_only_at", "output_head", "output_vocabulary"]


def output_vocabulary(model: Any) -> int:
    """How many tokens the model's output head scores (its weight may be packed, as in an int8 model)."""
    weight = getattr(model.get_output_embeddings(), "weight", None)
    return int(weight.shape[0]) if isinstance(weight, torch.Tensor) else int(model.config.vocab_size)


def output_head(model: Any) -> torch.nn.Module:
    """The first module after the encoder that works position by position: BERT's MLM head, ModernBERT's
    prediction head, a causal LM's unembedding. Running it at only the positions read saves its cost elsewhere."""
    children = dict(model.named_children())
    for name in ("cls", "head"):
        if name in children:
            module: torch.nn.Module = children[name]
            return module
    embeddings: torch.nn.Module = model.get_output_embeddings()
    return embeddings


@contextlib.contextmanager
def head_only_at(model: Any, positions: torch.Tensor) -> Iterator[None]:
    """Within the block, the model's output head runs only at ``positions`` ``(batch, k)``: logits come
    back as ``(batch, k, vocab)`` instead of ``(batch, n, vocab)``."""
    head = output_head(model)

    def gather(_module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        hidden = args[0]  # (batch, n, hidden)
        rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None]
        return (hidden[rows, positions.to(hidden.device)], *args[1:])  # (batch, k, hidden)

    handle = head.register_forward_pre_hook(gather)
    try:
        yield
    finally:
        handle.remove()
