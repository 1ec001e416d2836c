"""What a forward pass holds, estimated from the model's config before it runs: for memory budgets.

Every estimate is in bytes and errs on the large side (float32; every head's attention scores
counted where an eager kernel holds them), so a call that passes its check fits its budget. Every
explain call sizes its batches and checks its budget with these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["FLOAT", "ModelShape"]

FLOAT = 4  # bytes of one float32: activations are counted at full precision


@dataclass(frozen=True)
class ModelShape:
    """The sizes that decide what a forward pass holds, read from a model's config."""

    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    hidden: int
    intermediate: int
    vocab: int
    element: int  # bytes of one element of the model's own floating dtype (its key/value cache)

    @classmethod
    def of(cls, model: Any) -> ModelShape:
        """The shape of a ``torch.nn.Module`` (or anything with a transformers ``config``)."""
        cfg = model.config
        hidden = int(cfg.hidden_size)
        heads = int(cfg.num_attention_heads)
        inter = getattr(cfg, "intermediate_size", None) or getattr(cfg, "n_inner", None) or 4 * hidden
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
        return cls(
            layers=int(cfg.num_hidden_layers),
            heads=heads,
            kv_heads=int(getattr(cfg, "num_key_value_heads", None) or heads),
            head_dim=int(getattr(cfg, "head_dim", None) or hidden // heads),
            hidden=hidden,
            intermediate=int(inter),
            vocab=int(getattr(cfg, "vocab_size", 0) or 0),
            element=torch.finfo(dtype).bits // 8,
        )

    def layer_bytes(self, length: int) -> int:
        """One row of ``length`` tokens through one layer: the activations alive at once, with every
        head's attention scores."""
        return FLOAT * length * (8 * self.hidden + 2 * self.intermediate + self.heads * length)

    def fast_layer_bytes(self, length: int) -> int:
        """One row through one layer with a fused attention kernel (no scores kept): the MLP's input, gate,
        up and product (4 × intermediate) and a dozen hidden-size vectors (the residual, the norms, the
        queries, keys, values and the attention's output). SmolLM2's forward alone peaks at 286 MB at
        4,096 tokens, 40% above this, with the allocator's free blocks, which later allocations reuse."""
        return FLOAT * length * (4 * self.intermediate + 12 * self.hidden)

    def row_bytes(self, length: int, *, gradients: bool = False) -> int:
        """One row's activations: one layer at a time, or every layer's kept for backward (twice over)."""
        return self.layer_bytes(length) * (2 * self.layers if gradients else 1)

    def logits_bytes(self, positions: int, outputs: int | None = None) -> int:
        """Logits over ``outputs`` (default: the vocabulary) at ``positions``, with their float copy and softmax."""
        return 3 * FLOAT * positions * (self.vocab if outputs is None else outputs)

    def kv_cache_bytes(self, tokens: int) -> int:
        """The key/value cache of ``tokens`` positions: layers × 2 × kv heads × tokens × head dim × dtype."""
        return self.layers * 2 * self.kv_heads * tokens * self.head_dim * self.element

    def attention_maps_bytes(self, length: int) -> int:
        """Every head's full map of every layer, float32: ``(layers, heads, length, length)``."""
        return FLOAT * self.layers * self.heads * length * length
