"""The result of every intervention that maps an effect over a model: patching, attribution patching,
causal tracing and per-head ablation all return a :class:`PatchingResult`.

``values`` is ``(layers, columns)``: the columns are token positions for the per-position sites
(``resid_pre``, ``attn_out``, ``mlp_out``, ``resid_post``) and heads for ``head`` sites. For
patching, a value is normalised so that 0 is the corrupted run's metric and 1 the clean run's;
for ablation it is the change of the metric when that head is ablated (0: no effect).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from workbench.errors import ProbeError
from workbench.explain.site_names import SiteKind
from workbench.explain.tokens import TokenInfo

__all__ = ["DIRECTIONS", "Direction", "PatchingMethod", "PatchingResult", "normalised_effect"]

PatchingMethod = Literal["patching", "attribution_patching", "causal_tracing", "ablation"]
Direction = Literal["denoise", "noise"]
DIRECTIONS: tuple[Direction, ...] = get_args(Direction)


def normalised_effect(patched: np.ndarray, clean: float, corrupted: float) -> np.ndarray:
    """``(patched - corrupted) / (clean - corrupted)``: 0 where the run stays corrupted, 1 where it is clean.

    Raises ``ProbeError`` when the clean and corrupted runs give the same metric: nothing to explain.
    """
    gap = clean - corrupted
    if not np.isfinite(gap) or abs(gap) < 1e-12:
        raise ProbeError(
            f"The clean and corrupted runs give the same metric ({clean:.6g}), so there is no difference for "
            "patching to explain; choose a corrupted text (or answer tokens) on which the model's output differs."
        )
    return ((patched - corrupted) / gap).astype(np.float32)


# How each method that makes a PatchingResult is named in titles, by the views and the figures alike.
METHOD_TITLES = {
    "patching": "Activation patching",
    "attribution_patching": "Attribution patching",
    "causal_tracing": "Causal tracing",
    "ablation": "Head ablation",
}


@dataclass
class PatchingResult:
    """An effect for each site: ``values[layer, column]``; see the module docstring for what it means."""

    model: str
    method: PatchingMethod
    kind: SiteKind  # the site kind mapped: resid_pre, attn_out, head, mlp_out, resid_post
    metric: str  # e.g. "logit_diff(' Paris', ' Rome')"
    clean: str
    clean_tokens: TokenInfo
    values: np.ndarray  # (layers, positions) or (layers, heads)
    layers: list[int]
    columns: list[int]  # token positions, or heads when kind == "head"
    clean_metric: float
    corrupted_metric: float
    corrupted: str | None = None  # None for causal tracing (noise on the subject) and ablation
    corrupted_tokens: TokenInfo | None = None
    differing: list[int] = field(default_factory=list)  # positions where clean and corrupted tokens differ
    patched_positions: list[int] = field(default_factory=list)  # where each site (each head) was patched or ablated
    direction: Direction = "denoise"
    read_position: int = -1  # where the metric reads the logits
    subject: list[int] = field(default_factory=list)  # causal tracing: the positions given noise
    samples: int = 0  # causal tracing: noise draws averaged
    pearson_r: float | None = None  # attribution patching: against full patching, where both were run
    note: str = ""

    @property
    def by_head(self) -> bool:
        return self.kind == "head"

    @property
    def of_embeddings(self) -> bool:
        """True for a map of the ``embed`` site: its one row (``layers == [0]``) is the token embeddings."""
        return self.kind == "embed"

    def value(self, layer: int, column: int) -> float:
        """The effect at ``layer`` and ``column`` (a token position, or a head for head maps)."""
        if layer not in self.layers or column not in self.columns:
            what = "head" if self.by_head else "position"
            rows = "the embeddings as layer 0" if self.of_embeddings else f"layers {self.layers[0]}..{self.layers[-1]}"
            raise ProbeError(
                f"Layer {layer}, {what} {column} is not in this map: it holds {rows} "
                f"and {what}s {self.columns[0]}..{self.columns[-1]}."
            )
        return float(self.values[self.layers.index(layer), self.columns.index(column)])

    def top(self, k: int = 5) -> list[tuple[int, int, float]]:
        """The ``k`` sites of largest absolute effect, as (layer, column, value), strongest first."""
        flat = np.argsort(-np.abs(self.values), axis=None)[:k]
        rows, cols = np.unravel_index(flat, self.values.shape)
        return [(self.layers[r], self.columns[c], float(self.values[r, c])) for r, c in zip(rows, cols, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: a cell no run filled (NaN) and any other non-finite number become None."""
        return {
            "model": self.model,
            "method": self.method,
            "kind": self.kind,
            "metric": self.metric,
            "clean": self.clean,
            "clean_tokens": self.clean_tokens.to_dict(),
            "corrupted": self.corrupted,
            "corrupted_tokens": self.corrupted_tokens.to_dict() if self.corrupted_tokens else None,
            "differing": self.differing,
            "patched_positions": self.patched_positions,
            "values": [[_finite(v) for v in row] for row in np.round(self.values, 6).tolist()],
            "layers": self.layers,
            "columns": self.columns,
            "clean_metric": _finite(self.clean_metric),
            "corrupted_metric": _finite(self.corrupted_metric),
            "direction": self.direction,
            "read_position": self.read_position,
            "subject": self.subject,
            "samples": self.samples,
            "pearson_r": _finite(self.pearson_r),
            "note": self.note,
        }

    def __repr__(self) -> str:
        layer, column, value = self.top(1)[0]
        if self.by_head:
            where = f"head {layer}.{column}"
        else:
            where = f"{'embeddings' if self.of_embeddings else f'layer {layer}'}, position {column}"
        extra = f", r={self.pearson_r:.3f} against patching" if self.pearson_r is not None else ""
        return (
            f"PatchingResult({self.model}, {self.method} of {'the embeddings' if self.of_embeddings else self.kind}, "
            f"{self.values.shape[0]}x{self.values.shape[1]}, "
            f"{self.metric}: clean {self.clean_metric:.4g}, corrupted {self.corrupted_metric:.4g}; "
            f"strongest {where} = {value:.3f}{extra})"
        )


def _finite(value: float | None) -> float | None:
    """``value`` as a float, or None where it is missing or not finite (JSON has no NaN)."""
    return float(value) if value is not None and math.isfinite(value) else None
