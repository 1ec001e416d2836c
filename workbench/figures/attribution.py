"""Figures of token attributions: one method's token bars, several methods' deletion curves over a random
floor (or their scores token by token), a faithfulness deletion curve, and the methods' agreement matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from workbench.figures._registry import FigureError, figure_for
from workbench.figures._style import DIVERGING, color, layout, text, texts, token_axis, token_labels

NOT_A_FEATURE = "#c8c8c8"  # bars of tokens the method does not score (special tokens, the explained mask)
FLOOR_COLOR = "#7f7f7f"


def _short(value: str, limit: int = 50) -> str:
    one_line = " ".join(value.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _bar_colors(scores: np.ndarray, features: np.ndarray) -> list[str]:
    """Red for tokens that raise the target's probability, blue for those that lower it, grey for non-features."""
    scale = float(np.abs(scores[features]).max()) if features.any() else 0.0
    where = 0.5 + 0.5 * scores / scale if scale > 0 else np.full(len(scores), 0.5)
    sampled = sample_colorscale(DIVERGING, [float(v) for v in np.clip(where, 0, 1)])
    return [c if f else NOT_A_FEATURE for c, f in zip(sampled, features, strict=True)]


@figure_for("workbench.explain.attribution.result.AttributionResult")
def attribution_figure(result: Any) -> go.Figure:
    """One bar per token (x: the tokens in order, y: the score): red raises the target's probability, blue
    lowers it, grey tokens are not scored. The title names the method, the target and f(x)."""
    scores = np.asarray(result.scores)  # (tokens,)
    features = np.asarray(result.features, dtype=bool)
    positions = np.arange(len(scores))
    kind = np.where(features, "", " (not scored)").astype(object)
    fig = go.Figure(
        go.Bar(
            x=positions,
            y=scores,
            customdata=np.stack([np.array(token_labels(result.tokens.text), dtype=object), kind], axis=-1),
            marker_color=_bar_colors(scores, features),
            hovertemplate="%{x}: %{customdata[0]}%{customdata[1]}<br>score = %{y:.4g}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="token", **token_axis(result.tokens.text))
    fig.update_yaxes(title_text=text(f"score (> 0 raises p({result.target_name}))"), zeroline=True)
    title = (
        f"{result.method} on {result.model}: target {result.target_name!r}, f(x) = {result.score:.3f}, "
        f"on “{_short(result.text)}”"
    )
    return layout(fig, title, showlegend=False, bargap=0.15)


def _curve_trace(scores: Any, name: str, index: int, *, floor: bool = False) -> go.Scatter:
    removed = np.asarray(scores.deletion_removed)  # (points,)
    total = max(int(removed[-1]), 1)
    return go.Scatter(
        x=removed,
        y=np.asarray(scores.deletion_curve),
        customdata=removed / total,
        mode="lines+markers" if not floor else "lines",
        name=text(name),
        line={"color": FLOOR_COLOR, "dash": "dash"} if floor else {"color": color(index)},
        hovertemplate=text(name) + "<br>%{x} removed (%{customdata:.0%})<br>f = %{y:.4f}<extra></extra>",
    )


def _check_floor(floor: Any, removed: np.ndarray) -> None:
    if not hasattr(floor, "deletion_curve") or not hasattr(floor, "deletion_removed"):
        raise FigureError(
            f"floor must be the FaithfulnessScores of random_ranking_floor(bundle, result); got {type(floor).__name__}."
        )
    if not np.array_equal(np.asarray(floor.deletion_removed), removed):
        raise FigureError(
            "The floor was computed on another input (its deletion curve removes other numbers of tokens); "
            "compute it with random_ranking_floor(bundle, result) on one of these results."
        )


def _deletion_layout(fig: go.Figure, title: str) -> go.Figure:
    fig.update_xaxes(title_text="top-ranked tokens removed")
    fig.update_yaxes(title_text="f: the target's probability")
    return layout(fig, title, hovermode="closest", legend={"title": {"text": "ranking (AUC)"}})


@figure_for("workbench.explain.faithfulness.FaithfulnessScores")
def faithfulness_figure(scores: Any, *, floor: Any = None) -> go.Figure:
    """The deletion curve: f as the top-ranked tokens are removed one by one (lower and faster is more
    faithful), over the random-ranking ``floor`` (``random_ranking_floor``) when given."""
    fig = go.Figure(_curve_trace(scores, f"the ranking (AUC {scores.deletion_auc:.3f})", 0))
    if floor is not None:
        _check_floor(floor, np.asarray(scores.deletion_removed))
        fig.add_trace(_curve_trace(floor, f"random rankings (AUC {floor.deletion_auc:.3f})", 0, floor=True))
    title = (
        f"Deletion curve: comprehensiveness {scores.comprehensiveness:.3f}, sufficiency {scores.sufficiency:.3f}, "
        f"AUC {scores.deletion_auc:.3f}"
    )
    return _deletion_layout(fig, title)


def _one_input(results: Sequence[Any]) -> None:
    inputs = {(r.model, r.text, r.target) for r in results}
    if len(inputs) > 1:
        raise FigureError(
            f"These {len(results)} results explain {len(inputs)} different inputs; a list is drawn for several "
            "methods on one text and target: plot each text's results apart, or one result at a time."
        )


@figure_for("workbench.explain.attribution.result.AttributionResult", many=True)
def attributions_figure(results: Sequence[Any], *, show: str = "deletion", floor: Any = None) -> go.Figure:
    """Several methods on one text: ``show="deletion"`` draws each method's deletion curve on one figure,
    over the random-ranking ``floor`` (``random_ranking_floor(bundle, result)``) when given;
    ``show="tokens"`` draws a method × token map of the scores, each method's scaled by its largest |score|.

    Raises ``FigureError`` for results on different inputs, a result without faithfulness scores, a floor
    of another input, or an unknown ``show``."""
    results = list(results)
    _one_input(results)
    if show == "tokens":
        if floor is not None:
            raise FigureError("floor= goes with the deletion curves (show='deletion'), not with show='tokens'.")
        return _token_map(results)
    if show != "deletion":
        raise FigureError(f"show must be 'deletion' or 'tokens'; got {show!r}.")
    missing = [r.method for r in results if r.faithfulness is None]
    if missing:
        raise FigureError(
            f"The {', '.join(missing)} result has no faithfulness scores (it was made with faithfulness=False); "
            "attribute again with faithfulness=True, or draw show='tokens'."
        )
    first = results[0]
    fig = go.Figure()
    for i, r in enumerate(results):
        fig.add_trace(_curve_trace(r.faithfulness, f"{r.method} ({r.faithfulness.deletion_auc:.3f})", i))
    if floor is not None:
        _check_floor(floor, np.asarray(first.faithfulness.deletion_removed))
        fig.add_trace(_curve_trace(floor, f"random ({floor.deletion_auc:.3f})", 0, floor=True))
    title = (
        f"Deletion curves on {first.model}: target {first.target_name!r}, f(x) = {first.score:.3f}, "
        f"on “{_short(first.text)}”"
    )
    return _deletion_layout(fig, title)


def _token_map(results: list[Any]) -> go.Figure:
    first = results[0]
    raw = np.stack([np.asarray(r.scores, dtype=np.float32) for r in results])  # (methods, tokens)
    features = np.asarray(first.features, dtype=bool)
    largest = np.array([np.abs(row[features]).max() if features.any() else 0.0 for row in raw])
    scaled = raw / np.where(largest > 0, largest, 1.0)[:, None]  # each method's scores in -1..1
    scaled[:, ~features] = np.nan  # not scored: left blank
    methods = texts([r.method for r in results])
    tokens = token_labels(first.tokens.text)
    hover = np.empty((*raw.shape, 3), dtype=object)  # (methods, tokens, [method, token, raw score])
    hover[..., 0] = np.array(methods, dtype=object)[:, None]
    hover[..., 1] = np.array(tokens, dtype=object)[None, :]
    hover[..., 2] = raw
    fig = go.Figure(
        go.Heatmap(
            z=scaled,
            x=np.arange(raw.shape[1]),
            y=np.arange(len(results)),
            customdata=hover,
            colorscale=DIVERGING,
            zmid=0,
            zmin=-1,
            zmax=1,
            colorbar={"title": {"text": "score / largest |score|"}},
            hovertemplate=(
                "%{customdata[0]}<br>%{x}: %{customdata[1]}<br>score = %{customdata[2]:.4g}"
                " (%{z:.2f} of the largest)<extra></extra>"
            ),
        )
    )
    fig.update_xaxes(title_text="token", **token_axis(first.tokens.text))
    fig.update_yaxes(title_text="method", tickmode="array", tickvals=list(range(len(results))), ticktext=methods)
    title = f"Attributions on {first.model}: target {first.target_name!r}, on “{_short(first.text)}”"
    return layout(fig, title, height=max(260, 120 + 40 * len(results)))


@figure_for("workbench.explain.faithfulness.Agreement")
def agreement_figure(agreement: Any, *, statistic: str = "spearman") -> go.Figure:
    """The method × method matrix of rank agreement (``statistic``: "spearman" or "kendall"), the value in
    each cell; a method whose scores are all equal has no ranking and a blank row."""
    if statistic not in ("spearman", "kendall"):
        raise FigureError(f"statistic must be 'spearman' or 'kendall'; got {statistic!r}.")
    values = np.asarray(getattr(agreement, statistic), dtype=np.float64)  # (methods, methods)
    methods = texts(agreement.methods)
    k = len(methods)
    pair = np.empty((k, k, 2), dtype=object)  # (row, column, [row method, column method])
    pair[..., 0] = np.array(methods, dtype=object)[:, None]
    pair[..., 1] = np.array(methods, dtype=object)[None, :]
    name = "Spearman's ρ" if statistic == "spearman" else "Kendall's τ"
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=np.arange(k),
            y=np.arange(k),
            customdata=pair,
            colorscale=DIVERGING,
            zmin=-1,
            zmax=1,
            texttemplate="%{z:.2f}",
            colorbar={"title": {"text": name}},
            hovertemplate="%{customdata[0]} vs %{customdata[1]}<br>" + name + " = %{z:.3f}<extra></extra>",
        )
    )
    ticks = {"tickmode": "array", "tickvals": list(range(k)), "ticktext": methods}
    fig.update_xaxes(title_text="method", **ticks)
    fig.update_yaxes(title_text="method", autorange="reversed", **ticks)
    side = 160 + 70 * k
    return layout(fig, f"Agreement between methods: {name} of their token rankings", width=side + 140, height=side)
