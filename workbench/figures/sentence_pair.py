"""Figures of the sentence-pair probe: one pair's tokens by segment over its P(as written), or one bar per pair."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.figures._registry import FigureError, figure_for
from workbench.figures._style import color, layout, text, texts, token_axis, token_labels

if TYPE_CHECKING:
    from workbench.explain.sentence_pair import SentencePairResult

__all__ = ["sentence_pair_figure", "sentence_pairs_figure"]

_SEGMENT_NAMES = ("first", "second")
_CHANCE_COLOR = "#7f7f7f"


def _short(value: str, limit: int = 40) -> str:
    one_line = " ".join(value.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _segment_colors() -> list[list[object]]:
    """A two-step colour scale: segment 0 in the palette's first colour, segment 1 in its second."""
    return [[0.0, color(0)], [0.5, color(0)], [0.5, color(1)], [1.0, color(1)]]


@figure_for("workbench.explain.sentence_pair.SentencePairResult")
def sentence_pair_figure(result: SentencePairResult) -> go.Figure:
    """Above, the pair's tokens in order, coloured by segment (the first text and its [CLS] [SEP], then the
    second); below, one bar: P(as written), against the chance line at 0.5."""
    labels = token_labels(result.tokens)
    segments = np.asarray(result.segments, dtype=np.int64)  # (tokens,)
    positions = np.arange(len(labels))
    kinds = [
        f"{_SEGMENT_NAMES[s]} segment{' (special)' if sp else ''}"
        for s, sp in zip(segments, result.special, strict=True)
    ]
    fig = make_subplots(rows=2, cols=1, row_heights=[0.4, 0.6], vertical_spacing=0.3)
    fig.add_trace(
        go.Heatmap(
            x=positions,
            z=segments[None, :],  # (1, tokens)
            text=[labels],
            texttemplate="%{text}",
            customdata=np.array([kinds], dtype=object),
            colorscale=_segment_colors(),
            zmin=0,
            zmax=1,
            showscale=False,
            xgap=2,
            hovertemplate="%{x}: %{text}<br>%{customdata}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    as_written = text(result.as_written)
    fig.add_trace(
        go.Bar(
            x=[result.probability],
            y=[f"P({as_written})"],
            orientation="h",
            marker_color=color(2),
            hovertemplate=f"P({as_written}) = %{{x:.4f}}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    fig.add_vline(x=0.5, line={"color": _CHANCE_COLOR, "dash": "dash"}, row=2, col=1)
    fig.update_xaxes(title_text="token", row=1, col=1, **token_axis(result.tokens))
    fig.update_yaxes(showticklabels=False, row=1, col=1)
    fig.update_xaxes(title_text=f"P({as_written}) (dashed: chance)", range=[0, 1], row=2, col=1)
    title = f"{result.task} on {result.model}: P({result.as_written}) = {result.probability:.3f} ({result.label})"
    return layout(fig, title, showlegend=False)


@figure_for("workbench.explain.sentence_pair.SentencePairResult", many=True)
def sentence_pairs_figure(results: Sequence[SentencePairResult]) -> go.Figure:
    """One bar per pair: its P(as written), against the chance line at 0.5; hover shows both texts.

    Raises ``FigureError`` for results of different pair tasks (their probabilities mean different things)."""
    results = list(results)
    tasks = sorted({r.task for r in results})
    if len(tasks) > 1:
        raise FigureError(
            f"These results read {' and '.join(tasks)} heads, whose probabilities mean different things; "
            "plot each task's pairs apart."
        )
    first = results[0]
    positions = np.arange(len(results))
    probabilities = np.array([r.probability for r in results], dtype=np.float64)  # (pairs,)
    hover = [[text(r.first), text(r.second)] for r in results]
    fig = go.Figure(
        go.Bar(
            x=positions,
            y=probabilities,
            customdata=hover,
            marker_color=[color(0) if p >= 0.5 else color(1) for p in probabilities],
            hovertemplate="“%{customdata[0]}”<br>→ “%{customdata[1]}”<br>P = %{y:.4f}<extra></extra>",
        )
    )
    fig.add_hline(y=0.5, line={"color": _CHANCE_COLOR, "dash": "dash"})
    ticks = texts([f"{_short(r.first, 20)} → {_short(r.second, 20)}" for r in results])
    fig.update_xaxes(title_text="pair", tickmode="array", tickvals=positions.tolist(), ticktext=ticks, tickangle=-30)
    fig.update_yaxes(title_text=text(f"P({first.as_written})"), range=[0, 1])
    return layout(fig, f"{first.task} on {first.model}: P({first.as_written}) per pair (dashed: chance)")
