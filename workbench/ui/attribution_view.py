"""``AttributionView``: token attributions of several methods, row over row, with their faithfulness.

Tokens are coloured on a diverging, colour-blind-safe scale (ColorBrewer PuOr: orange raises the
target's probability, purple lowers it), each row scaled to its own largest magnitude since
methods differ in units. Beside each row: comprehensiveness (higher is more faithful),
sufficiency and deletion AUC (lower is more faithful), the best of each marked. Switches choose
the text and the target when the results hold several.

Example::

    from workbench.explain import attribute_many
    from workbench.ui import AttributionView
    AttributionView(attribute_many(bundle, texts, method=["shap", "integrated_gradients", "occlusion"]))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from workbench.explain.attribution import AttributionResult
from workbench.ui._assets import widget_css, widget_module
from workbench.ui._standalone import standalone_page

__all__ = ["AttributionView"]


def _row(result: AttributionResult, text_index: int) -> dict[str, Any]:
    f = result.faithfulness
    return {
        "text": text_index,
        "method": result.method,
        "target": result.target,
        "target_name": result.target_name,
        "score": round(float(result.score), 6),
        "route": result.route,
        "seconds": round(result.seconds, 3),
        "tokens": list(result.tokens.text),
        "special": [bool(s) for s in result.tokens.special],
        "features": [bool(x) for x in result.features],
        "spaces": [seg[len(seg.rstrip()) :] != "" for seg in result.segments],  # whitespace follows the token
        "scores": [round(float(s), 7) for s in result.scores],
        "faithfulness": None
        if f is None
        else {
            "comprehensiveness": round(f.comprehensiveness, 6),
            "sufficiency": round(f.sufficiency, 6),
            "deletion_auc": round(f.deletion_auc, 6),
        },
        "note": result.note,
    }


class TokenScoresWidget(anywidget.AnyWidget):
    """Rows of tokens coloured by a score, one text at a time (``attribution.js``): what ``AttributionView`` and
    ``ReplacedTokenView`` share. A row holds its tokens, their scores and which are features (coloured)."""

    _esm = widget_module("attribution.js")
    _css = widget_css("attribution.css")

    rows: traitlets.List[dict[str, Any]] = traitlets.List([]).tag(sync=True)
    texts: traitlets.List[str] = traitlets.List([]).tag(sync=True)
    text_index = traitlets.Int(0).tag(sync=True)
    target = traitlets.Unicode("").tag(sync=True)  # the target's name; "" shows the first one of the text
    title = traitlets.Unicode("").tag(sync=True)
    legend: traitlets.List[str] = traitlets.List(["lowers", "0", "raises"]).tag(sync=True)  # the scale's ends

    @classmethod
    def _results(cls, results: Any, kind: type, source: str) -> list[Any]:
        """``results`` as a list: one ``kind`` or a non-empty list of them; else ``TypeError`` saying what the view
        takes (``source``: the call that makes them)."""
        listed = [results] if isinstance(results, kind) else results
        if not isinstance(listed, Sequence) or not listed or not all(isinstance(r, kind) for r in listed):
            article = "an" if kind.__name__[0] in "AEIOU" else "a"
            raise TypeError(
                f"{cls.__name__} takes {article} {kind.__name__} or a non-empty list of them (from {source})."
            )
        return list(listed)

    def to_html(self, path: str | Path | None = None, *, memory_mb: int | None = None) -> str:
        """One standalone HTML file that opens offline with no kernel; returns it (and writes it to ``path``).

        Raises ``MemoryBudgetError`` when the page would not fit ``memory_mb`` (default: the kernel's budget).
        """
        state = {
            "rows": self.rows,
            "texts": self.texts,
            "text_index": self.text_index,
            "target": self.target,
            "title": self.title,
            "legend": self.legend,
        }
        return standalone_page(self.title, "attribution", state, path=path, memory_mb=memory_mb)


class AttributionView(TokenScoresWidget):
    """A row per method for one text and target; switches for the others; hover a token for its value."""

    def __init__(self, results: AttributionResult | Sequence[AttributionResult], *, title: str = "", **kwargs: Any):
        checked = self._results(results, AttributionResult, "workbench.explain.attribute or attribute_many")
        super().__init__(**kwargs)
        self.results = checked
        texts: list[str] = []
        rows = []
        for r in self.results:
            if r.text not in texts:
                texts.append(r.text)
            rows.append(_row(r, texts.index(r.text)))
        with self.hold_sync():
            self.texts = texts
            self.rows = rows
            self.title = title or f"Attributions: {self.results[0].model}"
            self.target = self.results[0].target_name
