"""Figures for interventions: a patching map (patching, attribution patching, causal tracing, each head
ablated), several maps side by side, and one ablation's predictions before and after.

A map is drawn as ``workbench.ui.patching_view`` draws it: layers up, token positions (or heads) across, on
a diverging scale centred at 0; the tokens that differ between the clean and corrupted texts (or the noised
subject) are bold. Steering has no result of its own to map: ``plot(generate(..., steer=...))`` draws the
steered generation beside the plain one (``workbench.figures.lens``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.explain.patching_result import METHOD_TITLES
from workbench.explain.site_names import Site
from workbench.figures._registry import FigureError, figure_for
from workbench.figures._style import DIVERGING, color, layout, text, token_labels
from workbench.figures.lens import add_probability_bars, check_k

if TYPE_CHECKING:
    from workbench.explain.ablation import AblationResult
    from workbench.explain.patching_result import PatchingResult

__all__ = ["ablation_figure", "patching_figure", "patching_figures"]


def _marked(result: PatchingResult) -> set[int]:
    """The clean text's positions to mark: the noised subject (causal tracing) or where the texts differ."""
    return set(result.subject if result.method == "causal_tracing" else result.differing)


def _column_axis(result: PatchingResult) -> dict[str, Any]:
    """Heads, or the clean tokens at the mapped positions (bold where marked), one column each."""
    if result.by_head:
        labels = [f"head {h}" for h in result.columns]
        title = "head"
    else:
        marked = _marked(result)
        shown = token_labels([result.clean_tokens.text[p] for p in result.columns])
        labels = [f"<b>{label}</b>" if p in marked else label for p, label in zip(result.columns, shown, strict=True)]
        title = "token position (clean text)"
    return {
        "tickmode": "array",
        "tickvals": list(range(len(result.columns))),
        "ticktext": labels,
        "tickangle": 0 if result.by_head else -45,
        "title": {"text": title},
    }


def _row_axis(result: PatchingResult) -> dict[str, Any]:
    labels = ["embeddings"] if result.of_embeddings else [f"layer {layer}" for layer in result.layers]
    return {
        "tickmode": "array",
        "tickvals": list(range(len(result.layers))),
        "ticktext": labels,
        "title": {"text": "layer"},
    }


def _hover_cells(result: PatchingResult) -> np.ndarray:
    """Per cell ``[site, what the column is]``: ``(layers, columns, 2)`` strings, escaped."""
    rows, columns = len(result.layers), len(result.columns)
    custom = np.empty((rows, columns, 2), dtype=object)
    tokens = result.clean_tokens.text
    corrupted = result.corrupted_tokens.text if result.corrupted_tokens is not None else None
    for c, column in enumerate(result.columns):
        if result.by_head:
            where = f"head {column}"
        else:
            where = f"position {column}: {text(repr(tokens[column]))}"
            if corrupted is not None and column in result.differing and result.method != "causal_tracing":
                where += f" (corrupted: {text(repr(corrupted[column]))})"
            elif result.method == "causal_tracing" and column in result.subject:
                where += " (noised subject)"
        for r, layer in enumerate(result.layers):
            custom[r, c, 0] = Site(result.kind, layer, column if result.by_head else None).name
            custom[r, c, 1] = where
    return custom


def _extent(results: Sequence[PatchingResult], extent: object) -> float:
    """The colour range's half-width: ``extent`` when given, else the largest finite |value| (1 for none)."""
    if extent is None:
        found = [np.abs(v[np.isfinite(v)]).max() for r in results if (v := np.asarray(r.values)).size]
        largest = max((float(f) for f in found if np.isfinite(f)), default=0.0)
        return largest if largest > 0 else 1.0
    if (
        not isinstance(extent, (int, float, np.floating, np.integer))
        or isinstance(extent, bool)
        or not math.isfinite(float(extent))
        or float(extent) <= 0
    ):
        raise FigureError(
            f"extent={extent!r} is not a colour range: give a positive number (the effect drawn darkest), "
            "or leave it out to use the largest effect in the map."
        )
    return float(extent)


def _colorbar_title(result: PatchingResult) -> str:
    if result.method == "ablation":
        return f"change of {text(result.metric)}"
    return "effect (0 corrupted, 1 clean)"


def _map(result: PatchingResult) -> go.Heatmap:
    return go.Heatmap(
        z=np.asarray(result.values, dtype=np.float32),  # (layers, columns)
        x=np.arange(len(result.columns)),
        y=np.arange(len(result.layers)),
        customdata=_hover_cells(result),
        hovertemplate="%{customdata[0]}, %{customdata[1]}<br>effect %{z:.4f}<extra></extra>",
        coloraxis="coloraxis",
        xgap=1,
        ygap=1,
    )


def _check_shape(result: PatchingResult) -> None:
    shape = np.shape(result.values)
    if shape != (len(result.layers), len(result.columns)):
        raise FigureError(
            f"The result's values are {shape} but it names {len(result.layers)} layers and {len(result.columns)} "
            "columns; plot a result as the workbench made it."
        )


def _caption(result: PatchingResult) -> str:
    """What the map measures, and how the two runs scored, in one line (not yet escaped)."""
    if result.method == "ablation":
        parts = [
            f"{result.metric}: {result.clean_metric:.4g} with every head; a cell is the change with that head ablated"
        ]
    else:
        parts = [f"{result.metric}: clean {result.clean_metric:.4g}, corrupted {result.corrupted_metric:.4g}"]
        parts.append(f"{result.direction}")
        if result.method == "causal_tracing":
            parts.append(f"bold: the noised subject, {result.samples} noise draws")
        elif result.differing and not result.by_head:
            parts.append("bold: tokens that differ in the corrupted text")
    if result.pearson_r is not None:
        parts.append(f"r = {result.pearson_r:.3f} against patching")
    return "; ".join(parts)


def _title(result: PatchingResult) -> str:
    method = METHOD_TITLES.get(result.method, result.method)
    if result.method == "ablation":
        return f"{method}: {result.model} on {result.clean!r}"
    what = "each head" if result.by_head else result.kind
    return f"{method} of {what}: {result.model} on {result.clean!r}"


@figure_for("workbench.explain.patching_result.PatchingResult")
def patching_figure(result: PatchingResult, *, extent: float | None = None) -> go.Figure:
    """Layers × positions (or × heads) of a patching, tracing or head-ablation map, on a diverging scale
    centred at 0 from ``-extent`` to ``extent`` (default: the largest |effect|); hover for site, token, value.

    Raises ``FigureError`` for an ``extent`` that is not a positive number.
    """
    _check_shape(result)
    half = _extent([result], extent)
    fig = go.Figure(_map(result))
    return layout(
        fig,
        _title(result),
        title_subtitle_text=text(_caption(result)),
        margin_t=90,
        xaxis=_column_axis(result),
        yaxis=_row_axis(result),
        coloraxis=_coloraxis(result, half),
        height=max(320, 30 * len(result.layers) + 200),
    )


def _coloraxis(result: PatchingResult, half: float) -> dict[str, Any]:
    return {
        "colorscale": DIVERGING,
        "cmin": -half,
        "cmax": half,
        "cmid": 0.0,
        "colorbar": {"title": {"text": _colorbar_title(result)}},
    }


@figure_for("workbench.explain.patching_result.PatchingResult", many=True)
def patching_figures(results: Sequence[PatchingResult], *, extent: float | None = None) -> go.Figure:
    """Several maps of one model and clean text side by side (e.g. ``resid_pre``, ``attn_out``, ``mlp_out``)
    on one colour scale, each titled by its method and site kind.

    Raises ``FigureError`` when the maps are of different models, texts or methods, or for a bad ``extent``.
    """
    from workbench.explain.patching_result import PatchingResult

    if not all(isinstance(r, PatchingResult) for r in results):
        names = sorted({type(r).__name__ for r in results})
        raise FigureError(f"A list of maps takes only PatchingResult, got {', '.join(names)}; plot them apart.")
    first = results[0]
    for other in results[1:]:
        if (other.model, other.clean, other.method) != (first.model, first.clean, first.method):
            raise FigureError(
                "Maps drawn side by side must be one method on one model and clean text; got "
                f"{first.method} of {first.model} on {first.clean!r} and {other.method} of {other.model} on "
                f"{other.clean!r}: plot them one at a time."
            )
    for r in results:
        _check_shape(r)
    half = _extent(results, extent)
    titles = ["each head" if r.by_head else ("embeddings" if r.of_embeddings else r.kind) for r in results]
    fig = make_subplots(rows=1, cols=len(results), subplot_titles=[text(t) for t in titles], horizontal_spacing=0.06)
    for i, result in enumerate(results, start=1):
        fig.add_trace(_map(result), row=1, col=i)
        fig.update_xaxes(_column_axis(result), row=1, col=i)
        fig.update_yaxes(_row_axis(result), row=1, col=i)
    method = METHOD_TITLES.get(first.method, first.method)
    return layout(
        fig,
        f"{method}: {first.model} on {first.clean!r}",
        title_subtitle_text=text(_caption(first)),
        margin_t=100,
        coloraxis=_coloraxis(first, half),
        height=max(320, 30 * max(len(r.layers) for r in results) + 200),
        width=max(700, 380 * len(results)),
    )


@figure_for("workbench.explain.ablation.AblationResult")
def ablation_figure(result: AblationResult, *, k: int | None = None) -> go.Figure:
    """The top ``k`` predictions (default all kept) before and after ablating the heads, as two bar panels,
    the metric's change in the title. Raises ``FigureError`` for a ``k`` larger than the predictions kept.
    """
    kept = min(len(result.before.tokens), len(result.after.tokens))
    k = kept if k is None else check_k(k, kept, "predictions")
    heads = ", ".join(f"{layer}.{head}" for layer, head in result.heads) or "no heads"
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=["before", f"after {result.kind}-ablating {heads}"],
        horizontal_spacing=0.15,
    )
    for i, prediction in enumerate((result.before, result.after), start=1):
        tokens = prediction.tokens[:k]
        probabilities = np.asarray(prediction.probabilities[:k], dtype=np.float32)  # (k,)
        add_probability_bars(
            fig, tokens, probabilities, name="before" if i == 1 else "after", colour=color(i - 1), col=i
        )
    caption = (
        f"{result.metric}: {result.metric_before:.4g} → {result.metric_after:.4g} ({result.change:+.4g}), "
        f"read at position {result.position}"
    )
    return layout(
        fig,
        f"Head ablation: {result.model} on {result.text!r}",
        title_subtitle_text=text(caption),
        margin_t=90,
        height=max(300, 26 * k + 180),
        width=900,
    )
