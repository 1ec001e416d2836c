"""Figures of attention: the head-statistics map (layers × heads), one head's map, and Clark et al.'s survey."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from workbench.figures._registry import FigureError, figure_for
from workbench.figures._style import SEQUENTIAL, color, layout, text, token_axis, token_labels

# What each statistic of AttentionResult.stats measures, as an axis or colour-bar title.
STATISTIC_LABELS = {
    "entropy": "entropy (nats)",
    "mean_distance": "mean distance (tokens)",
    "special": "share on special tokens",
    "punctuation": "share on punctuation",
    "previous": "share on the previous token",
    "next": "share on the next token",
    "self": "share on the token itself",
    "induction": "share on induction keys",
}
SURVEY_LABELS = {
    "cls": "share on [CLS]",
    "sep": "share on [SEP]",
    "punctuation": "share on punctuation",
    "previous": "share on the previous token",
    "next": "share on the next token",
    "self": "share on the token itself",
    "entropy": "entropy (nats)",
}
HEAD_TOKENS = 128  # one head's map shows at most this many tokens a side (hover text grows with the square)


def _short(value: str, limit: int = 60) -> str:
    one_line = " ".join(value.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _head_grid(values: np.ndarray, label: str) -> go.Heatmap:
    """A layers × heads heatmap: x = head, y = layer, the value on hover."""
    layers, heads = values.shape
    return go.Heatmap(
        z=values,
        x=np.arange(heads),
        y=np.arange(layers),
        colorscale=SEQUENTIAL,
        colorbar={"title": {"text": text(label)}},
        hovertemplate="layer %{y}, head %{x}<br>" + text(label) + " = %{z:.4g}<extra></extra>",
    )


def _grid_axes(fig: go.Figure, layers: int, heads: int) -> None:
    fig.update_xaxes(title_text="head", tickmode="linear", dtick=1 if heads <= 24 else None)
    fig.update_yaxes(title_text="layer", tickmode="linear", dtick=1 if layers <= 36 else None, autorange="reversed")


@figure_for("workbench.explain.attention.AttentionResult")
def attention_figure(
    result: Any,
    *,
    statistic: str = "entropy",
    head: tuple[int, int] | None = None,
    window: tuple[int, int] | None = None,
) -> go.Figure:
    """The head-statistics map (layers × heads, coloured by ``statistic``), or with ``head=(layer, head)``
    that head's query × key map over ``window=(start, stop)`` tokens (the whole text up to 128 tokens).

    Raises ``FigureError`` for an unknown statistic, a head out of range or a bad window."""
    if head is not None:
        return _head_map(result, head, window)
    if window is not None:
        raise FigureError("window= picks the tokens of one head's map; give head=(layer, head) with it.")
    names = [s for s in STATISTIC_LABELS if s in result.stats] + [s for s in result.stats if s not in STATISTIC_LABELS]
    if statistic not in result.stats:
        raise FigureError(f"There is no attention statistic {statistic!r}; choose one of: {', '.join(names)}.")
    values = np.asarray(result.stats[statistic])  # (layers, heads)
    label = STATISTIC_LABELS.get(statistic, statistic)
    fig = go.Figure(_head_grid(values, label))
    _grid_axes(fig, result.num_layers, result.num_heads)
    title = f"{result.model}: {label} of each head, on “{_short(result.text)}” ({result.num_tokens} tokens)"
    return layout(fig, title)


def _head_map(result: Any, head: tuple[int, int], window: tuple[int, int] | None) -> go.Figure:
    if not (isinstance(head, (tuple, list)) and len(head) == 2 and all(_is_index(v) for v in head)):
        raise FigureError(f"head must be a pair (layer, head) of whole numbers, such as (0, 1); got {head!r}.")
    layer, index = int(head[0]), int(head[1])
    if not (0 <= layer < result.num_layers and 0 <= index < result.num_heads):
        raise FigureError(
            f"head=({layer}, {index}) is out of range: {result.model} has layers 0 to {result.num_layers - 1} "
            f"and heads 0 to {result.num_heads - 1}."
        )
    n = result.num_tokens
    start, stop = _window(window, n)
    weights = np.asarray(result.region(layer, index, (start, stop), (start, stop)))  # (query, key)
    positions = np.arange(start, stop)
    shown = token_labels(result.tokens.text[start:stop])
    hover = np.empty((stop - start, stop - start, 2), dtype=object)  # (query, key, [query token, key token])
    hover[..., 0] = np.array(shown, dtype=object)[:, None]
    hover[..., 1] = np.array(shown, dtype=object)[None, :]
    fig = go.Figure(
        go.Heatmap(
            z=weights,
            x=positions,
            y=positions,
            customdata=hover,
            colorscale=SEQUENTIAL,
            zmin=0,
            colorbar={"title": {"text": "attention"}},
            hovertemplate=(
                "query %{y} %{customdata[0]}<br>key %{x} %{customdata[1]}<br>weight = %{z:.4f}<extra></extra>"
            ),
        )
    )
    axis = token_axis(result.tokens.text[start:stop], list(positions))
    fig.update_xaxes(title_text="key (attended to)", **axis)
    fig.update_yaxes(title_text="query (attending)", autorange="reversed", **{**axis, "tickangle": 0})
    part = "" if (start, stop) == (0, n) else f", tokens {start} to {stop - 1} of {n}"
    title = f"{result.model}: layer {layer}, head {index}{part}, on “{_short(result.text)}”"
    side = 28 + 14 * min(stop - start, 40)
    return layout(fig, title, height=max(420, side), width=max(520, side + 120))


def _is_index(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _window(window: tuple[int, int] | None, n: int) -> tuple[int, int]:
    if window is None:
        if n > HEAD_TOKENS:
            raise FigureError(
                f"This text has {n:,} tokens, more than one head's map shows ({HEAD_TOKENS}); "
                f"pick a window of up to {HEAD_TOKENS} tokens, such as window=(0, {HEAD_TOKENS})."
            )
        return 0, n
    ok = isinstance(window, (tuple, list)) and len(window) == 2 and all(_is_index(v) for v in window)
    if not ok or not (0 <= window[0] < window[1] <= n) or window[1] - window[0] > HEAD_TOKENS:
        raise FigureError(
            f"window must be (start, stop) with 0 <= start < stop <= {n} and at most {HEAD_TOKENS} tokens; "
            f"got {window!r}."
        )
    return int(window[0]), int(window[1])


@figure_for("workbench.explain.survey.AttentionSurvey")
def survey_figure(survey: Any, *, measure: str | None = None) -> go.Figure:
    """Clark et al.'s measures averaged over the heads of each layer, one group of bars per layer
    (the shares of attention; entropy is in other units), or with ``measure=...`` that measure for each
    head, layers × heads. Raises ``FigureError`` for a measure the survey does not hold."""
    names = list(survey.measures)
    if measure is not None:
        if measure not in survey.measures:
            raise FigureError(f"The survey holds no measure {measure!r}; choose one of: {', '.join(names)}.")
        values = np.asarray(survey.measures[measure])  # (layers, heads)
        label = SURVEY_LABELS.get(measure, measure)
        fig = go.Figure(_head_grid(values, label))
        _grid_axes(fig, *values.shape)
        return layout(fig, f"{survey.model}: {label} of each head, averaged over {survey.texts} texts")
    shares = [m for m in names if m != "entropy"]
    fig = go.Figure()
    for i, name in enumerate(shares):
        per_layer = np.asarray(survey.by_layer(name))  # (layers,)
        label = SURVEY_LABELS.get(name, name)
        fig.add_trace(
            go.Bar(
                x=np.arange(len(per_layer)),
                y=per_layer,
                name=text(label),
                marker_color=color(i),
                hovertemplate="layer %{x}<br>" + text(label) + " = %{y:.3f}<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="layer", tickmode="linear", dtick=1)
    fig.update_yaxes(title_text="share of attention (mean over the layer's heads)")
    title = f"{survey.model}: where attention goes, per layer, over {survey.texts} texts ({survey.tokens:,} tokens)"
    return layout(fig, title, barmode="group", legend={"title": {"text": "measure"}})
