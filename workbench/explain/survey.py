"""Attention over many texts: the measurements of Clark et al. 2019 ("What does BERT look at?").

For each head, averaged over a set of texts: the share of attention on [CLS], on [SEP], on
punctuation, on the previous and on the next token, and the entropy. Heads count as
"previous-token" or "next-token" heads when most of their attention goes there.

Example::

    survey = attention_survey(load_model("minilm"), texts[:200])
    survey.by_layer("sep")            # (layers,) share of attention on [SEP], per layer
    survey.heads_where("previous", 0.5)   # [(layer, head), ...]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.errors import ProbeError
from workbench.explain.attention import attention

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["SURVEY_MEASURES", "AttentionSurvey", "attention_survey"]

SURVEY_MEASURES = ("cls", "sep", "punctuation", "previous", "next", "self", "entropy")


@dataclass
class AttentionSurvey:
    """Per-head averages over ``texts``: each measure is an array ``(layers, heads)``."""

    model: str
    texts: int
    tokens: int
    measures: dict[str, np.ndarray] = field(default_factory=dict)

    def by_layer(self, measure: str) -> np.ndarray:
        """The measure averaged over the heads of each layer: ``(layers,)``."""
        averaged: np.ndarray = self.measures[measure].mean(axis=1)
        return averaged

    def heads_where(self, measure: str, threshold: float) -> list[tuple[int, int]]:
        """(layer, head) of every head whose average ``measure`` is above ``threshold``."""
        layers, heads = np.nonzero(self.measures[measure] > threshold)
        return [(int(layer), int(head)) for layer, head in zip(layers, heads, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "texts": self.texts,
            "tokens": self.tokens,
            "measures": {k: v.round(4).tolist() for k, v in self.measures.items()},
        }


def attention_survey(bundle: ModelBundle, texts: Sequence[str], *, max_tokens: int = 128) -> AttentionSurvey:
    """Average Clark et al.'s per-head measures over ``texts`` (each cut to ``max_tokens``).

    Raises ``ProbeError`` when ``texts`` is empty or holds something other than non-empty strings.
    """
    if isinstance(texts, str) or not texts:
        raise ProbeError("attention_survey needs a list of texts; give a few dozen sentences or more.")
    sums: dict[str, np.ndarray] = {}
    total_tokens = 0
    tok = bundle.tokenizer
    cls_id = getattr(tok, "cls_token_id", None)
    sep_id = getattr(tok, "sep_token_id", None)
    for text in texts:
        result = attention(bundle, text, max_tokens=max_tokens)
        w = result.weights.astype(np.float64)  # (layers, heads, query, key)
        ids = np.asarray(result.tokens.ids)
        cls = ids == cls_id if cls_id is not None else np.zeros(len(ids), bool)
        sep = ids == sep_id if sep_id is not None else np.zeros(len(ids), bool)
        measures = {
            "cls": w[..., cls].sum(-1).mean(-1),
            "sep": w[..., sep].sum(-1).mean(-1),
            "punctuation": result.stats["punctuation"],
            "previous": result.stats["previous"],
            "next": result.stats["next"],
            "self": result.stats["self"],
            "entropy": result.stats["entropy"],
        }
        for k, v in measures.items():
            sums[k] = sums.get(k, 0) + np.asarray(v, dtype=np.float64)
        total_tokens += result.num_tokens
    n = len(texts)
    return AttentionSurvey(bundle.name, n, total_tokens, {k: (v / n).astype(np.float32) for k, v in sums.items()})
