"""Attention rollout as an attribution: how much of the read position's representation flows from each token."""

from __future__ import annotations

import numpy as np

from workbench.explain.attention import attention, attention_rollout
from workbench.explain.attribution.objective import MethodOutput, Objective

__all__ = ["rollout_scores"]


def rollout_scores(objective: Objective) -> MethodOutput:
    """The last layer's rollout row (Abnar & Zuidema 2020) at the position the target is read from.

    That is the first token for a BERT-style classifier (the mean of all rows for mean pooling),
    the mask for a masked LM, the last token for a causal model. Rollout has no sign and does not
    depend on the target: it says where the model looks, not what for.
    """
    obj = objective
    result = attention(obj.bundle, obj.text)
    rollout = attention_rollout(result)[-1].astype(np.float64)  # (query, key)
    pooling = getattr(obj.bundle.model.config, "classifier_pooling", "cls")
    if obj.task == "masked-lm":
        row, read = rollout[obj.position], f"the mask at {obj.position}"
    elif obj.task == "causal-lm" or obj.bundle.is_causal:
        row, read = rollout[-1], "the last token"
    elif pooling == "mean":
        row, read = rollout.mean(0), "every token (mean pooling)"
    else:
        row, read = rollout[0], "the first token"
    scores = np.where(obj.features, row, 0.0)
    return scores, {"read_from": read}, "attention rollout (eager attention, heads averaged, residual added)"
