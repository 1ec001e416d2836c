"""``AttributionResult``: one method's score for each token of one text, toward one target."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.explain.tokens import TokenInfo

__all__ = ["AttributionResult"]


@dataclass
class AttributionResult:
    """Scores per token (positive: the token raises the target's probability), with how they were made.

    ``scores`` is ``(tokens,)``; positions that are not features (special tokens, the mask being
    explained) score 0 and are False in ``features``. ``score`` is f(x), the target's probability
    for the whole text; ``baseline_score`` is f with every feature removed. ``faithfulness`` holds
    the scores of ``workbench.explain.faithfulness`` for this result.
    """

    model: str
    text: str
    method: str
    task: str  # "classify", "masked-lm" or "causal-lm"
    target: int  # label index or vocabulary id
    target_name: str
    tokens: TokenInfo
    segments: list[str]  # token text with its trailing whitespace; joined they give the text back
    scores: np.ndarray  # (tokens,) float32
    features: np.ndarray  # (tokens,) bool
    score: float  # f(x)
    baseline_score: float  # f(x with every feature removed)
    removal: str  # how a token is removed: "mask" or "delete"
    route: str  # what computed it: the method, and the forward pass it ran on
    precision: str = "fp32"  # of the model evaluations: "fp32", "bf16", ...
    seconds: float = 0.0
    evaluations: int = 0  # model evaluations (rows) the method used
    position: int | None = None  # where a masked-LM target is read
    faithfulness: Any = None  # FaithfulnessScores
    extra: dict[str, Any] = field(default_factory=dict)  # method details: steps, completeness error, max_evals, ...
    note: str = ""

    @property
    def num_tokens(self) -> int:
        return len(self.scores)

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` features with the highest scores, as (token, score), highest first."""
        idx = [int(i) for i in np.argsort(-self.scores, kind="stable") if self.features[i]][:k]
        return [(self.tokens.text[i], float(self.scores[i])) for i in idx]

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-ready values."""
        return {
            "model": self.model,
            "text": self.text,
            "method": self.method,
            "task": self.task,
            "target": self.target,
            "target_name": self.target_name,
            "tokens": self.tokens.to_dict(),
            "segments": self.segments,
            "scores": [float(s) for s in self.scores],
            "features": [bool(f) for f in self.features],
            "score": self.score,
            "baseline_score": self.baseline_score,
            "removal": self.removal,
            "route": self.route,
            "precision": self.precision,
            "seconds": self.seconds,
            "evaluations": self.evaluations,
            "position": self.position,
            "faithfulness": self.faithfulness.to_dict() if self.faithfulness is not None else None,
            "extra": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.extra.items()},
            "note": self.note,
        }

    def to_shap(self) -> Any:
        """This result as a ``shap.Explanation``, so shap's own plots (``shap.plots.text``) draw it."""
        import shap

        return shap.Explanation(
            values=self.scores.astype(np.float64),
            base_values=float(self.extra.get("base_value", self.baseline_score)),
            data=np.array(self.segments, dtype=object),
            feature_names=list(self.tokens.text),
        )

    def __repr__(self) -> str:
        top = ", ".join(f"{t!r} {s:+.3f}" for t, s in self.top(3))
        return (
            f"AttributionResult({self.method} on {self.model}, target {self.target_name!r} "
            f"p={self.score:.3f}, {self.num_tokens} tokens; top: {top})"
        )
