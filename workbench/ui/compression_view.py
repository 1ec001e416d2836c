"""``CompressionView``: what compression changed, at a glance — size, speed and the metric, how far
each attention head drifted, and the attributions of both models on one text, row over row.

Example::

    from workbench.compress import compare_models, quantize
    from workbench.ui import CompressionView
    CompressionView(compare_models(bundle, quantize(bundle), eval_data=val, texts=texts))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anywidget
import traitlets

from workbench.compress.report import CompressionReport
from workbench.training.metrics import finite_or_none
from workbench.ui._assets import widget_css, widget_module
from workbench.ui._standalone import standalone_page

__all__ = ["CompressionView"]


def _number(value: Any, digits: int = 6) -> float | None:
    if finite_or_none(value) is None:
        return None
    return float(f"{float(value):.{digits}g}")


def report_state(report: CompressionReport) -> dict[str, Any]:
    """The report as the view draws it: numbers rounded, token text as data (set with textContent)."""
    lengths = list(report.latency_ms["original"])
    rows = [
        {
            "label": "weights (MB)",
            "original": _number(report.size_bytes["original"] / 1e6),
            "compressed": _number(report.size_bytes["compressed"] / 1e6),
            "lower_is_better": True,
        }
    ]
    rows += [
        {
            "label": f"latency @{n} tokens (ms)",
            "original": _number(report.latency_ms["original"][n]),
            "compressed": _number(report.latency_ms["compressed"][n]),
            "lower_is_better": True,
        }
        for n in lengths
    ]
    if report.metric:
        rows.append(
            {
                "label": report.metric,
                "original": _number(report.metric_values["original"]),
                "compressed": _number(report.metric_values["compressed"]),
                "lower_is_better": report.metric == "perplexity",
            }
        )
    examples = [
        {
            "text": e["text"],
            "target": e["target"],
            "tokens": e["tokens"],
            "special": e["special"],
            "spaces": e["spaces"],
            "features": e["features"],
            "original": [_number(v) for v in e["original"]],
            "compressed": [_number(v) for v in e["compressed"]],
            "spearman": _number(e["spearman"], 4),
        }
        for e in report.examples
    ]
    return {
        "title": f"{report.original} → {report.compressed}",
        "method": report.compression.get("method", ""),
        "rows": rows,
        "agreement": _number(report.prediction_agreement, 4),
        "drift": [[_number(v, 4) for v in row] for row in report.attention_js.tolist()],
        "drift_mean": _number(report.attention_drift, 4),
        "attribution_method": report.attribution_method,
        "mean_spearman": _number(report.mean_spearman, 4),
        "examples": examples,
    }


class CompressionView(anywidget.AnyWidget):
    """The report of ``compare_models``: deltas, a layers x heads map of attention drift, attributions side by side."""

    _esm = widget_module("compression.js")
    _css = widget_css("compression.css")

    report = traitlets.Dict({}).tag(sync=True)
    example = traitlets.Int(0).tag(sync=True)

    def __init__(self, report: CompressionReport, **kwargs: Any):
        if not isinstance(report, CompressionReport):
            raise TypeError(
                "CompressionView takes the CompressionReport of workbench.compress.compare_models, "
                f"got {type(report).__name__}."
            )
        super().__init__(**kwargs)
        self.source = report
        self.report = report_state(report)

    def to_html(self, path: str | Path | None = None, *, memory_mb: int | None = None) -> str:
        """One standalone HTML file that opens offline with no kernel; returns it (and writes it to ``path``).

        Raises ``MemoryBudgetError`` when the page would not fit ``memory_mb`` (default: the kernel's budget).
        """
        return standalone_page(
            self.report["title"],
            "compression",
            {"report": self.report, "example": self.example},
            path=path,
            memory_mb=memory_mb,
        )
