"""The embedding projector: each text a point, where a model's row puts it, with a slider over the rows.

``project(model, texts, labels)`` runs the engine's ``project_layers`` (pooled hidden states of every row,
on each row's principal axes) and draws the chosen row as a 2-D or 3-D scatter, coloured by label or by the
classifier's prediction, the text on hover. The slider shows one row at a time: each row is its own group
of traces, and a step makes that group visible and writes that row's axis titles (the share of variance each
axis explains differs from row to row). Two models or checkpoints (before and after fine-tuning) are drawn
side by side, under one slider when they have the same rows.

Example::

    fig = project({"before": base, "after": tuned}, texts, labels, pooling="mean")
    fig.write_html("projector.html")
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.errors import ProbeError
from workbench.explain.compare import Models, resolve_models
from workbench.explain.projection import check_options, check_texts, project_layers
from workbench.figures._registry import FigureError, figure_for
from workbench.figures._style import color as palette_color
from workbench.figures._style import layout, text

if TYPE_CHECKING:
    from workbench.explain.probing import Pooling
    from workbench.explain.projection import ProjectionResult

__all__ = ["project", "projection_figure", "projections_figure"]

Color = Literal["label", "prediction"]
COLORS = ("label", "prediction")
MAX_MODELS = 2  # side by side; more panels leave each too small to read
HOVER_CHARS = 120  # a longer text is cut, with an ellipsis
HOVER_LINE = 60  # and wrapped, so the hover box stays narrow
AXIS_NAMES = ("x", "y", "z")


def project(
    models: Models,
    texts: Sequence[str],
    labels: Sequence[str | int] | None = None,
    *,
    layer: int = -1,
    pooling: Pooling = "mean",
    method: str = "pca",
    dims: int = 2,
    color: Color | None = None,
    max_length: int = 128,
    batch_size: int = 32,
    progress: bool = True,
    memory_mb: int | None = None,
) -> go.Figure:
    """A scatter of the texts' pooled hidden states on the principal axes of row ``layer`` (-1: the last), with a
    slider over the rows.

    ``models``: a bundle, a model name or a checkpoint folder; or two of them (a list, or a mapping from a
    label to each, such as ``{"before": base, "after": tuned}``) drawn side by side. ``color``: "label"
    (the default where labels are given) or "prediction" (a classifier's predicted label). The other options
    go to ``project_layers``, which computes what is drawn. Raises ``ProbeError`` for bad texts, labels,
    options, a layer out of range or more than two models, ``FigureError`` for a colour that cannot be drawn,
    and ``MemoryBudgetError`` before a model's features would exceed ``memory_mb``.

    Example::

        project(classifier, review_texts, review_labels, color="prediction", dims=3)
    """
    check_texts(texts)
    check_options(method, dims)
    _check_layer_type(layer)
    _check_color(color)
    if color == "label" and labels is None:
        raise FigureError("color='label' needs labels: pass labels=[...] (one per text), or use color='prediction'.")
    resolved = resolve_models(models, "project")
    if len(resolved) > MAX_MODELS:
        raise ProbeError(
            f"project draws one model or two side by side, but was given {len(resolved)} (a run folder gives each "
            "of its checkpoints); pick two, such as the first and the last checkpoint."
        )
    results = [
        project_layers(
            source,
            texts,
            labels,
            pooling=pooling,
            method=method,
            dims=dims,
            max_length=max_length,
            batch_size=batch_size,
            progress=progress,
            memory_mb=memory_mb,
        )
        for _, source in resolved
    ]
    return _figure(results, [label for label, _ in resolved], layer=layer, color=color)


@figure_for("workbench.explain.projection.ProjectionResult")
def projection_figure(result: ProjectionResult, *, layer: int = -1, color: Color | None = None) -> go.Figure:
    """One model's texts on the principal axes of row ``layer`` (-1: the last), a slider over the rows, coloured
    by ``color``: "label" (the default where there are labels) or "prediction". Raises ``ProbeError`` for a layer
    out of range and ``FigureError`` for a colour the result has no names for."""
    return _figure([result], [result.model], layer=layer, color=color)


@figure_for("workbench.explain.projection.ProjectionResult", many=True)
def projections_figure(
    results: Sequence[ProjectionResult], *, layer: int = -1, color: Color | None = None
) -> go.Figure:
    """Two projections side by side (before and after fine-tuning), under one slider when they have the same
    rows; otherwise each under its own. Raises as ``projection_figure`` does, and ``FigureError`` for more than two."""
    if len(results) > MAX_MODELS:
        raise FigureError(
            f"plot() draws at most {MAX_MODELS} projections side by side, got {len(results)}; plot them in pairs."
        )
    return _figure(list(results), [r.model for r in results], layer=layer, color=color)


def _check_layer_type(layer: object) -> None:
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise ProbeError(f"layer must be a whole number (a row index, -1 for the last), got {layer!r}.")


def _check_color(color: object) -> None:
    if color is not None and color not in COLORS:
        raise FigureError(f"Unknown color {color!r}; use 'label' (the labels given) or 'prediction' (a classifier's).")


def _groups(results: list[ProjectionResult], color: object) -> tuple[str | None, list[str]]:
    """Which names colour the points ("label", "prediction" or none), and every name in order of appearance."""
    _check_color(color)
    if color is None:
        color = (
            "label"
            if all(r.labels is not None for r in results)
            else "prediction"
            if all(r.predictions is not None for r in results)
            else None
        )
    if color == "label" and any(r.labels is None for r in results):
        raise FigureError("color='label' needs labels, and this projection has none; use color='prediction'.")
    if color == "prediction" and any(r.predictions is None for r in results):
        raise FigureError(
            "color='prediction' needs a classifier's predictions, and this projection has none; use color='label'."
        )
    names: dict[str, None] = {}
    for r in results:
        for values in (r.labels, r.predictions):
            names.update(dict.fromkeys(values or []))
    return (None if color is None else str(color)), list(names)


def _hover_text(value: str) -> str:
    """The text escaped, on one line per ~60 characters, cut at ~120."""
    flat = " ".join(value.split())
    if len(flat) > HOVER_CHARS:
        flat = flat[: HOVER_CHARS - 1].rstrip() + "…"
    return "<br>".join(text(line) for line in textwrap.wrap(flat, HOVER_LINE) or [""])


def _hover_template(result: ProjectionResult) -> str:
    lines = ["%{text}"]
    if result.labels is not None:
        lines.append("label: %{customdata[0]}")
    if result.predictions is not None:
        lines.append("predicted: %{customdata[1]}")
    axes = ", ".join(f"PC{k + 1} %{{{AXIS_NAMES[k]}:.3f}}" for k in range(result.dims))
    return "<br>".join([*lines, axes]) + "<extra></extra>"


def _axis_titles(result: ProjectionResult, row: int, panel: int) -> dict[str, str]:
    """Layout updates titling panel ``panel``'s axes with the share of row ``row``'s variance each explains."""
    suffix = "" if panel == 0 else str(panel + 1)
    titles = {}
    for k in range(result.dims):
        share = float(result.explained_variance[row, k])
        title = f"PC{k + 1} ({share:.0%} of variance)"
        if result.dims == 3:
            titles[f"scene{suffix}.{AXIS_NAMES[k]}axis.title.text"] = title
        else:
            titles[f"{AXIS_NAMES[k]}axis{suffix}.title.text"] = title
    return titles


def _figure(results: list[ProjectionResult], titles: list[str], *, layer: object, color: object) -> go.Figure:
    """The scatter of each result's rows, side by side, with a slider per group of panels that share rows."""
    _check_layer_type(layer)
    chosen = [r.layer_index(layer) for r in results]
    key, names = _groups(results, color)
    dims = results[0].dims
    if any(r.dims != dims for r in results):
        raise FigureError("Projections drawn side by side must have the same dims; project both with dims=2 or 3.")
    kind = "scene" if dims == 3 else "xy"
    fig = make_subplots(
        rows=1,
        cols=len(results),
        specs=[[{"type": kind} for _ in results]],
        subplot_titles=[text(t) for t in titles] if len(results) > 1 else None,
        horizontal_spacing=0.08,
    )
    owner: list[tuple[int, int]] = []  # (panel, row) of each trace, in the order they are added
    for panel, result in enumerate(results):
        customdata = np.column_stack(
            [
                [text(v) for v in (result.labels or [""] * len(result.texts))],
                [text(v) for v in (result.predictions or [""] * len(result.texts))],
            ]
        )  # (texts, 2): the label and the prediction each point's hover shows
        hover = [_hover_text(t) for t in result.texts]
        values = None if key is None else (result.labels if key == "label" else result.predictions)
        groups = [None] if values is None else [n for n in names if n in set(values)]
        for row in range(len(result.layer_names)):
            for group in groups:
                members = np.arange(len(result.texts)) if group is None else np.flatnonzero(np.asarray(values) == group)
                points = result.coords[row, members]  # (members, dims)
                trace_type = go.Scatter3d if dims == 3 else go.Scatter
                trace = trace_type(
                    **{AXIS_NAMES[k]: points[:, k] for k in range(dims)},
                    mode="markers",
                    marker={
                        "size": 4 if dims == 3 else 8,
                        "opacity": 0.85,
                        "color": palette_color(0 if group is None else names.index(group)),
                    },
                    name=text(result.model if group is None else group),
                    legendgroup=None if group is None else text(group),
                    showlegend=group is not None and panel == 0,
                    visible=row == chosen[panel],
                    text=[hover[i] for i in members],
                    customdata=customdata[members],
                    hovertemplate=_hover_template(result),
                    meta={"panel": panel, "layer": row},
                )
                fig.add_trace(trace, row=1, col=panel + 1)
                owner.append((panel, row))
        fig.update_layout(_nested(_axis_titles(result, chosen[panel], panel)))
    shared = len({len(r.layer_names) for r in results}) == 1
    panels_per_slider = [list(range(len(results)))] if shared else [[p] for p in range(len(results))]
    sliders = []
    for s, panels in enumerate(panels_per_slider):
        indices = [i for i, (p, _) in enumerate(owner) if p in panels]
        first = results[panels[0]]
        steps = []
        for row, row_name in enumerate(first.layer_names):
            titles_update: dict[str, str] = {}
            for p in panels:
                titles_update.update(_axis_titles(results[p], row, p))
            steps.append(
                {
                    "method": "update",
                    "label": text(row_name),
                    "args": [{"visible": [owner[i][1] == row for i in indices]}, titles_update, indices],
                }
            )
        width = 1 / len(panels_per_slider)
        sliders.append(
            {
                "active": chosen[panels[0]],
                "steps": steps,
                "x": s * width + 0.02,
                "len": width - 0.04,
                "y": 0,
                "yanchor": "top",
                "pad": {"t": 40},
                "currentvalue": {"prefix": "showing: "},
            }
        )
    what = " and ".join(titles)
    first = results[0]
    title = (
        f"{what}: {first.pooling}-pooled hidden states of {len(first.texts)} texts, {first.method.upper()} to {dims}-D"
    )
    return layout(
        fig,
        title,
        sliders=sliders,
        height=560,
        legend={"title": {"text": "predicted label" if key == "prediction" else "label"}},
        margin={"l": 70, "r": 30, "t": 80, "b": 110},
    )


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"xaxis.title.text": v}`` as ``{"xaxis": {"title": {"text": v}}}``, the form ``update_layout`` takes."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        parts = path.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out
