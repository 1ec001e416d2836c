"""Figures of a ``CompressionReport``: the attention-drift map beside the size, speed and metric table, and
both models' attributions on one of the report's texts."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.figures._registry import FigureError, figure_for
from workbench.figures._style import SEQUENTIAL, color, layout, text, token_axis


def _number(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _rows(report: Any) -> list[tuple[str, str, str, str]]:
    """The table the figure shows: (what, original, compressed, change) for the weights, each latency, the metric
    and how often both models predict alike; as ``CompressionView`` and ``str(report)`` show them."""
    size = report.size_bytes
    rows = [("weights (MB)", _number(size["original"] / 1e6), _number(size["compressed"] / 1e6))]
    changes = [f"×{report.size_ratio:.2f}"]
    for n in report.latency_ms["original"]:
        rows.append(
            (
                f"latency @{n} tokens (ms)",
                _number(report.latency_ms["original"][n]),
                _number(report.latency_ms["compressed"][n]),
            )
        )
        speed = report.speedup(n)
        changes.append(f"{speed:.2f}× faster" if speed >= 1 else f"{1 / speed:.2f}× slower")
    if report.metric:
        values = report.metric_values
        rows.append((report.metric, _number(values["original"]), _number(values["compressed"])))
        changes.append(f"{report.metric_delta:+.4f}")
    if report.prediction_agreement is not None:
        rows.append(("same prediction", "", ""))
        changes.append(f"{report.prediction_agreement:.1%}")
    if report.spearman:
        rows.append((f"attribution agreement ({report.attribution_method}, Spearman)", "", ""))
        changes.append(_number(report.mean_spearman))
    return [(*row, change) for row, change in zip(rows, changes, strict=True)]


@figure_for("workbench.compress.report.CompressionReport")
def compression_figure(report: Any, *, example: int | None = None) -> go.Figure:
    """How far each attention head drifted (Jensen–Shannon divergence, layers × heads) beside the table of
    size, latency and metric; with ``example=i``, both models' attributions on the report's i-th text.

    Raises ``FigureError`` for an example the report does not hold."""
    if example is not None:
        return _example(report, example)
    title = f"{report.original} → {report.compressed}: what compression changed"
    rows = _rows(report)
    table = go.Table(
        header={"values": ["", "original", "compressed", "change"], "align": ["left", "right"]},
        cells={"values": [[text(c) for c in column] for column in zip(*rows, strict=True)], "align": ["left", "right"]},
        columnwidth=[2.4, 1, 1, 1.2],
    )
    drift = np.asarray(report.attention_js)  # (layers, heads)
    if not drift.size:
        fig = go.Figure(table)
        return layout(fig, f"{title} (no attention drift: {report.drift_note or 'no texts were given'})")
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.45, 0.55],
        specs=[[{"type": "heatmap"}, {"type": "table"}]],
        subplot_titles=("attention drift per head (Jensen–Shannon, bits)", ""),
    )
    fig.add_trace(
        go.Heatmap(
            z=drift,
            x=np.arange(drift.shape[1]),
            y=np.arange(drift.shape[0]),
            colorscale=SEQUENTIAL,
            zmin=0,
            colorbar={"title": {"text": "bits"}, "x": 0.43},
            hovertemplate="layer %{y}, head %{x}<br>drift = %{z:.4g} bits<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(table, row=1, col=2)
    fig.update_xaxes(title_text="head", tickmode="linear", dtick=1, row=1, col=1)
    fig.update_yaxes(title_text="layer", tickmode="linear", dtick=1, autorange="reversed", row=1, col=1)
    return layout(fig, f"{title}; mean attention drift {report.attention_drift:.3g} bits", height=420, width=980)


def _example(report: Any, example: int) -> go.Figure:
    count = len(report.examples)
    if isinstance(example, bool) or not isinstance(example, (int, np.integer)) or not 0 <= example < count:
        held = (
            f"examples 0 to {count - 1}"
            if count > 1
            else "example 0 only"
            if count
            else "no examples (no texts were given, or the model has no output to attribute)"
        )
        raise FigureError(f"example={example!r} is not in the report, which holds {held}.")
    one = report.examples[int(example)]
    tokens = one["tokens"]
    features = np.asarray(one["features"], dtype=bool)
    fig = go.Figure()
    for i, (role, name) in enumerate(((report.original, "original"), (report.compressed, "compressed"))):
        scores = np.asarray(one[name], dtype=np.float32)  # (tokens,)
        fig.add_trace(
            go.Bar(
                x=np.arange(len(tokens)),
                y=scores,
                name=text(role),
                marker_color=[color(i) if f else "#c8c8c8" for f in features],
                customdata=token_axis(tokens)["ticktext"],
                hovertemplate=text(role) + "<br>%{x}: %{customdata}<br>score = %{y:.4g}<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="token", **token_axis(tokens))
    fig.update_yaxes(title_text=text(f"{report.attribution_method} score for {one['target']!r}"))
    title = f"{report.attribution_method} on both models, target {one['target']!r}: Spearman {_number(one['spearman'])}"
    return layout(fig, title, barmode="group")
