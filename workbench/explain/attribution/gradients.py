"""Gradient methods on the word embeddings: integrated gradients and gradient × input."""

from __future__ import annotations

import numpy as np
import torch

from workbench.errors import AttributionError
from workbench.explain.attribution.objective import MethodOutput, Objective

__all__ = ["gradient_x_input", "gradient_x_input_footprint", "integrated_gradients", "integrated_gradients_footprint"]

MAX_STEPS = 1024
TOLERANCE = 0.01  # completeness: |sum of attributions − (f(x) − f(baseline))| within 1% of the difference


def _gradients(obj: Objective, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The target's probability at each point ``(k, n, hidden)`` and its gradient there, in memory-sized batches."""
    values, grads = [], []
    size = obj.rows_per_batch(points.shape[1], gradients=True)
    for start in range(0, points.shape[0], size):
        x = points[start : start + size].detach().requires_grad_(True)
        with torch.enable_grad():
            y = obj.score_embeddings(x)  # (batch,)
            (g,) = torch.autograd.grad(y.sum(), x)
        values.append(y.detach())
        grads.append(g.detach().float())
    obj.evaluations += points.shape[0]
    return torch.cat(values), torch.cat(grads)


def _integrate(obj: Objective, x: torch.Tensor, baseline: torch.Tensor, steps: int) -> torch.Tensor:
    """Gauss-Legendre quadrature of the gradient along the straight path; attributions ``(n,)``.

    The points are made and their gradients summed one batch at a time, so memory does not grow with ``steps``.
    """
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.tensor((nodes + 1) / 2, dtype=x.dtype, device=x.device)  # in (0, 1)
    w = torch.tensor(weights / 2, dtype=x.dtype, device=x.device)
    size = obj.rows_per_batch(x.shape[0], gradients=True)
    mean_grad = torch.zeros_like(x)  # (n, hidden)
    for start in range(0, steps, size):
        a = alphas[start : start + size]
        points = baseline[None] + a[:, None, None] * (x - baseline)[None]  # (batch, n, hidden)
        _, grads = _gradients(obj, points)
        mean_grad += (w[start : start + size, None, None] * grads).sum(0)
    return ((x - baseline) * mean_grad).sum(-1)


def integrated_gradients(objective: Objective, *, steps: int = 32) -> MethodOutput:
    """Integrated gradients (Sundararajan et al. 2017) from the baseline where every feature is removed.

    The attributions sum to f(x) − f(baseline); when ``steps`` does not reach that within 1%, the
    steps are doubled (up to 1024) and ``extra`` records how many it took and the error left.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise AttributionError(f"steps must be a positive integer, got {steps!r}.")
    obj = objective
    x = obj.word_embeddings()
    baseline = obj.reference_embeddings()
    with torch.no_grad():
        ends = obj.score_embeddings(torch.stack([x, baseline])).double()
    difference = float(ends[0] - ends[1])
    while True:
        attributions = _integrate(obj, x, baseline, steps).double()
        error = abs(float(attributions.sum()) - difference)
        if error <= TOLERANCE * max(abs(difference), 1e-3) or steps >= MAX_STEPS:
            break
        steps = min(2 * steps, MAX_STEPS)
    scores = np.where(obj.features, attributions.cpu().numpy(), 0.0)
    extra = {
        "steps": steps,
        "completeness_error": error,
        "f_x": float(ends[0]),
        "f_baseline": float(ends[1]),
        "relative_completeness_error": error / max(abs(difference), 1e-12),
        "base_value": float(ends[1]),
    }
    baseline_name = "the mask token" if obj.reference_id is not None else "zero vectors"
    return scores, extra, f"integrated gradients on word embeddings from {baseline_name}"


def gradient_x_input(objective: Objective) -> MethodOutput:
    """The gradient of the target's probability with respect to each word embedding, dotted with that embedding."""
    obj = objective
    x = obj.word_embeddings()
    _, grads = _gradients(obj, x[None])
    scores = np.where(obj.features, (grads[0] * x).sum(-1).double().cpu().numpy(), 0.0)
    return scores, {}, "gradient × input on word embeddings"


def _embedding_bytes(obj: Objective, copies: int) -> int:
    return copies * len(obj.input_ids) * obj.shape.hidden * 4  # (n, hidden) float32 each


def integrated_gradients_footprint(objective: Objective, *, steps: int = 32) -> tuple[int, str]:
    """The smallest step: one point with gradients through every layer (or both ends scored at once),
    with the input, the baseline, the summed gradient and one point's gradient; ``steps`` does not matter."""
    obj = objective
    step = max(obj.step_bytes(gradients=True), 2 * obj.step_bytes())
    return step + _embedding_bytes(obj, 5), "a shorter text"


def gradient_x_input_footprint(objective: Objective) -> tuple[int, str]:
    """One row with gradients through every layer, and the input with its gradient."""
    return objective.step_bytes(gradients=True) + _embedding_bytes(objective, 2), "a shorter text"
