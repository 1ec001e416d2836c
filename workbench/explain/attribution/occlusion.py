"""Occlusion: how much the target's probability drops when a token (or a window of tokens) is removed."""

from __future__ import annotations

import numpy as np

from workbench.errors import AttributionError
from workbench.explain.attribution.objective import MethodOutput, Objective

__all__ = ["occlusion", "occlusion_footprint"]


def occlusion(objective: Objective, *, window: int = 1) -> MethodOutput:
    """f(x) − f(x without the window starting at each feature), spread evenly over the window's features."""
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise AttributionError(f"window must be a positive number of tokens, got {window!r}.")
    obj = objective
    positions = np.flatnonzero(obj.features)
    rows, spans = [], []
    for start in range(len(positions) - window + 1) if len(positions) >= window else [0]:
        span = positions[start : start + window]
        drop = np.zeros(len(obj.input_ids), dtype=bool)
        drop[span] = True
        rows.append(obj.remove(drop))
        spans.append(span)
    full = obj.score()
    drops = full - obj.score_ids(rows)
    scores = np.zeros(len(obj.input_ids))
    counts = np.zeros(len(obj.input_ids))
    for span, d in zip(spans, drops, strict=True):
        scores[span] += d / len(span)
        counts[span] += 1
    scores = np.where(counts > 0, scores / np.maximum(counts, 1), 0.0)
    return scores, {"window": window}, f"occlusion ({obj.removal} {window} token{'s' if window > 1 else ''} at a time)"


def occlusion_footprint(objective: Objective, *, window: int = 1) -> tuple[int, str]:
    """One row forward, and every occluded copy of the input's ids (one per window)."""
    return objective.step_bytes() + objective.ids_bytes(int(objective.features.sum())), "a shorter text"
