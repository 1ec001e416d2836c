"""How far to trust an attribution: remove the tokens it ranks highest and see what the model does.

- **Comprehensiveness** (ERASER, DeYoung et al. 2020): f(x) − f(x without the top k% tokens),
  averaged over k in 1, 5, 10, 20 and 50% (the AOPC of removal). Higher is more faithful: the
  tokens the method picked were the ones the prediction needed.
- **Sufficiency**: f(x) − f(only the top k% tokens kept), averaged the same way. Lower is more
  faithful: those tokens alone carry the prediction.
- **Deletion curve**: f as the top-ranked tokens are removed one by one; its area (x scaled to
  0..1) is lower when the ranking is faithful.
- **Random-ranking floor** (``random_ranking_floor``): the same scores for random orders of the
  tokens, averaged: what a method must beat to have found anything.
- **Agreement**: rank correlation (Spearman's ρ, Kendall's τ) between the scores of two methods
  on one input.

Tokens are removed the way the objective removes them (the mask token where the model has
one, deleted otherwise), ranked by score, highest first.

Example::

    scores = faithfulness(bundle, result)
    scores.comprehensiveness, scores.sufficiency, scores.deletion_auc
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.errors import AttributionError

if TYPE_CHECKING:
    from workbench.explain.attribution.objective import Objective
    from workbench.explain.attribution.result import AttributionResult
    from workbench.models import ModelBundle

__all__ = [
    "FRACTIONS",
    "Agreement",
    "FaithfulnessScores",
    "agreement",
    "faithfulness",
    "random_ranking_floor",
    "score_ranking",
]

FRACTIONS = (0.01, 0.05, 0.10, 0.20, 0.50)
DELETION_POINTS = 32  # the deletion curve is sampled at most this many times (plus the full input)


@dataclass
class FaithfulnessScores:
    """Comprehensiveness and sufficiency (averaged over ``FRACTIONS``, and per fraction) and the deletion curve."""

    comprehensiveness: float
    sufficiency: float
    by_fraction: dict[float, dict[str, float]]  # fraction -> {"tokens", "comprehensiveness", "sufficiency"}
    deletion_removed: np.ndarray  # (points,) how many top tokens were removed at each point
    deletion_curve: np.ndarray  # (points,) f after removing them
    deletion_auc: float  # area under the curve over the share removed, 0..1; lower is more faithful

    def to_dict(self) -> dict[str, Any]:
        return {
            "comprehensiveness": self.comprehensiveness,
            "sufficiency": self.sufficiency,
            "by_fraction": {str(k): v for k, v in self.by_fraction.items()},
            "deletion_removed": self.deletion_removed.tolist(),
            "deletion_curve": self.deletion_curve.tolist(),
            "deletion_auc": self.deletion_auc,
        }


def score_ranking(objective: Objective, scores: np.ndarray) -> FaithfulnessScores:
    """Faithfulness of a ranking of the objective's features by ``scores`` (highest first)."""
    obj = objective
    features = np.flatnonzero(obj.features)
    order = features[np.argsort(-np.asarray(scores)[features], kind="stable")]  # feature positions, best first
    m = len(order)
    n = len(obj.input_ids)

    def without(k: int) -> list[int]:
        drop = np.zeros(n, dtype=bool)
        drop[order[:k]] = True
        return obj.remove(drop)

    def only(k: int) -> list[int]:
        drop = obj.features.copy()
        drop[order[:k]] = False
        return obj.remove(drop)

    counts = [max(1, math.ceil(f * m)) for f in FRACTIONS]
    removed = np.unique(np.linspace(0, m, min(m, DELETION_POINTS) + 1).round().astype(int))
    full = obj.score()
    bins = len(counts)
    rows = [without(k) for k in counts] + [only(k) for k in counts] + [without(int(k)) for k in removed[1:]]
    # The same input comes up more than once (removing the top 1% is often the deletion curve's first
    # point): score each distinct one once.
    distinct = list(dict.fromkeys(tuple(r) for r in rows))
    scored = dict(zip(distinct, obj.score_ids(distinct), strict=True))
    values = np.array([scored[tuple(r)] for r in rows])
    comp = full - values[:bins]
    suff = full - values[bins : 2 * bins]
    curve = np.concatenate([[full], values[2 * bins :]])  # removed[0] is 0: nothing removed
    share = removed / max(m, 1)
    auc = float(np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(share))) if len(share) > 1 else float(curve[0])
    by_fraction = {
        f: {"tokens": int(k), "comprehensiveness": float(c), "sufficiency": float(s)}
        for f, k, c, s in zip(FRACTIONS, counts, comp, suff, strict=True)
    }
    return FaithfulnessScores(float(comp.mean()), float(suff.mean()), by_fraction, removed, curve, auc)


def faithfulness(bundle: ModelBundle, result: AttributionResult) -> FaithfulnessScores:
    """Faithfulness of an ``AttributionResult`` (recomputed on ``bundle``, the model it explains)."""
    from workbench.explain.attribution.objective import evaluation, make_objective

    with evaluation(bundle.model):
        objective = make_objective(bundle, result.text, result.target)
        return score_ranking(objective, result.scores)


def random_ranking_floor(
    bundle: ModelBundle, result: AttributionResult, *, rankings: int = 8, seed: int = 0
) -> FaithfulnessScores:
    """What chance scores: the faithfulness of ``rankings`` random orders of ``result``'s tokens, averaged.

    A method is worth its cost where its deletion curve falls below this floor (and its comprehensiveness
    rises above it). Every number is the mean over the random rankings, scored on ``bundle`` (the model
    ``result`` explains) exactly as ``faithfulness`` scores a method's; each ranking costs as many model
    evaluations as ``faithfulness`` (about 40 rows). Raises ``AttributionError`` when ``rankings`` is not
    a positive whole number.

    Example::

        floor = random_ranking_floor(bundle, result)
        plot([shap_result, ig_result], floor=floor)   # the deletion curves over the random floor
    """
    from workbench.explain.attribution.objective import evaluation, make_objective

    if isinstance(rankings, bool) or not isinstance(rankings, (int, np.integer)) or rankings < 1:
        raise AttributionError(f"rankings must be a positive whole number, such as 8; got {rankings!r}.")
    generator = np.random.default_rng(seed)
    with evaluation(bundle.model):
        objective = make_objective(bundle, result.text, result.target)
        runs = [score_ranking(objective, generator.permutation(len(result.scores))) for _ in range(int(rankings))]
    by_fraction = {
        f: {
            "tokens": runs[0].by_fraction[f]["tokens"],
            "comprehensiveness": float(np.mean([r.by_fraction[f]["comprehensiveness"] for r in runs])),
            "sufficiency": float(np.mean([r.by_fraction[f]["sufficiency"] for r in runs])),
        }
        for f in FRACTIONS
    }
    return FaithfulnessScores(
        comprehensiveness=float(np.mean([r.comprehensiveness for r in runs])),
        sufficiency=float(np.mean([r.sufficiency for r in runs])),
        by_fraction=by_fraction,
        deletion_removed=runs[0].deletion_removed,
        deletion_curve=np.mean([r.deletion_curve for r in runs], axis=0),
        deletion_auc=float(np.mean([r.deletion_auc for r in runs])),
    )


@dataclass
class Agreement:
    """Rank agreement between methods on one input: ``(methods, methods)`` matrices."""

    methods: list[str]
    spearman: np.ndarray
    kendall: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"methods": self.methods, "spearman": self.spearman.tolist(), "kendall": self.kendall.tolist()}

    def __str__(self) -> str:
        width = max(len(m) for m in self.methods)
        lines = [" " * (width + 2) + "  ".join(f"{m[:8]:>8}" for m in self.methods)]
        for m, row in zip(self.methods, self.spearman, strict=True):
            lines.append(f"{m:>{width}}  " + "  ".join(f"{v:8.2f}" for v in row))
        return "Spearman's rho between methods\n" + "\n".join(lines)


def agreement(results: Sequence[Any]) -> Agreement:
    """Spearman's ρ and Kendall's τ between every pair of results on the same text and target.

    A method whose scores are all equal has no ranking; its correlations are NaN. Raises ValueError
    when the results explain different inputs.
    """
    from scipy.stats import kendalltau, spearmanr

    if len(results) < 2:
        raise ValueError("Agreement needs at least two results, one per method.")
    first = results[0]
    for r in results[1:]:
        if r.text != first.text or r.target != first.target or r.model != first.model:
            raise ValueError(
                "Agreement compares methods on one input: every result must have the same model, text and target."
            )
    mask = first.features
    k = len(results)
    rho, tau = np.eye(k), np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            a, b = results[i].scores[mask], results[j].scores[mask]
            if np.ptp(a) == 0 or np.ptp(b) == 0:
                rho[i, j] = rho[j, i] = tau[i, j] = tau[j, i] = np.nan
                continue
            rho[i, j] = rho[j, i] = spearmanr(a, b).statistic
            tau[i, j] = tau[j, i] = kendalltau(a, b).statistic
    return Agreement([r.method for r in results], rho, tau)
