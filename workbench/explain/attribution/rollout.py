"""Attention rollout as an attribution: how much of the read position's representation flows from each token."""

from __future__ import annotations

import numpy as np

from workbench.explain.attention import AttentionResult, attention
from workbench.explain.attribution.objective import MethodOutput, Objective
from workbench.explain.budget import MB

__all__ = ["rollout_footprint", "rollout_prepare", "rollout_row", "rollout_scores"]

ROLLOUT_SHARE = 8  # the rows of maps one step of the rollout holds: an eighth of the budget


def rollout_prepare(objective: Objective) -> None:
    """Read the input's attention before the model runs for anything else, so that its own budget
    check (``attention``'s) comes first; the rollout then reads its rows."""
    objective.attention = attention(objective.bundle, objective.text, memory_mb=objective.memory_mb)


def rollout_footprint(objective: Objective) -> tuple[int, str]:
    """One row forward, and the rollout's smallest step: one query row of every head's map of one layer."""
    obj = objective
    n = len(obj.input_ids)
    return obj.step_bytes() + _row_bytes(obj.shape.heads, n) + 3 * 8 * n, "a shorter text"


def _row_bytes(heads: int, n: int) -> int:
    return (heads + 3) * n * 8  # each head's row (float32, then float64), their mean and its normalised copy


def rollout_row(result: AttentionResult, start: np.ndarray, memory_mb: int, *, add_residual: bool = True) -> np.ndarray:
    """``start`` ``(n,)`` times the last layer's rollout (Abnar & Zuidema 2020, as ``attention_rollout``):
    the rollout row of a position when ``start`` picks it, the mean of the rows when it is uniform.

    Computed as a vector times each layer's residual-added, row-normalised map, last layer first, from
    blocks of rows of the maps: exact at any length, holding a block of rows, never a full map.
    """
    n, heads = result.num_tokens, result.num_heads
    block = max(1, memory_mb * MB // ROLLOUT_SHARE // _row_bytes(heads, n))
    vector = np.asarray(start, dtype=np.float64)
    for layer in reversed(range(result.num_layers)):
        flowed = np.zeros(n)
        for first in range(0, n, block):
            last = min(n, first + block)
            rows = np.stack([result.rows(layer, h, first, last) for h in range(heads)])  # (heads, block, key)
            a: np.ndarray = rows.mean(axis=0, dtype=np.float64)  # (block, key)
            if add_residual:
                a *= 0.5
                a[np.arange(last - first), np.arange(first, last)] += 0.5
            a /= a.sum(-1, keepdims=True)
            flowed += vector[first:last] @ a
        vector = flowed
    return vector


def rollout_scores(objective: Objective) -> MethodOutput:
    """The last layer's rollout row (Abnar & Zuidema 2020) at the position the target is read from.

    That is the first token for a BERT-style classifier (the mean of all rows for mean pooling),
    the mask for a masked LM, the last token for a causal model. Rollout has no sign and does not
    depend on the target: it says where the model looks, not what for. Exact at every length the
    model takes: the maps are read a block of rows at a time.
    """
    obj = objective
    result = obj.attention if obj.attention is not None else attention(obj.bundle, obj.text, memory_mb=obj.memory_mb)
    n = result.num_tokens
    pooling = getattr(obj.bundle.model.config, "classifier_pooling", "cls")
    start = np.zeros(n)
    if obj.task == "masked-lm":
        assert obj.position is not None  # a masked LM's objective always reads its mask
        start[obj.position], read = 1.0, f"the mask at {obj.position}"
    elif obj.task == "causal-lm" or obj.bundle.is_causal:
        start[-1], read = 1.0, "the last token"
    elif pooling == "mean":
        start[:], read = 1.0 / n, "every token (mean pooling)"
    else:
        start[0], read = 1.0, "the first token"
    row = rollout_row(result, start, obj.memory_mb)
    scores = np.where(obj.features, row, 0.0)
    return scores, {"read_from": read}, "attention rollout (heads averaged, residual added)"
