"""Figures of a classifier's evaluation: the confusion matrix, per-class precision/recall/F1, precision–recall curves.

``plot(evaluate_classifier(clf, data))`` draws all three side by side; ``view="confusion"``, ``"per-class"`` or
``"pr"`` draws one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.figures._registry import FigureError, figure_for
from workbench.figures._style import SEQUENTIAL, color, layout, text, texts

if TYPE_CHECKING:
    from workbench.explain.classifier_eval import ClassifierEvaluation

__all__ = ["classifier_figure"]

View = Literal["all", "confusion", "per-class", "pr"]
VIEWS: tuple[View, ...] = ("all", "confusion", "per-class", "pr")
SCORES = ("precision", "recall", "f1")
SCORE_NAMES = {"precision": "precision", "recall": "recall", "f1": "F1"}
VIEW_TITLES = {"confusion": "confusion matrix", "per-class": "per class", "pr": "precision–recall, one vs rest"}


def _class_axis(names: list[str]) -> dict[str, Any]:
    """A numeric axis with the label names as ticks: two classes written alike still get two columns."""
    return {"tickmode": "array", "tickvals": list(range(len(names))), "ticktext": texts(names)}


def _confusion(evaluation: ClassifierEvaluation, normalize: bool, show_scale: bool) -> go.Heatmap:
    """Rows: the true class, columns: the predicted one; the count in each cell, coloured by count (or, with
    ``normalize``, by its share of the true class)."""
    counts = evaluation.confusion  # (classes, classes)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)  # (classes, classes)
    names = texts(evaluation.label_names)
    custom = np.empty((*counts.shape, 3), dtype=object)  # (true, predicted, [true name, predicted name, share])
    for t in range(counts.shape[0]):
        for p in range(counts.shape[1]):
            custom[t, p] = [names[t], names[p], round(float(shares[t, p]), 4)]
    return go.Heatmap(
        z=shares.round(4) if normalize else counts,
        text=counts,
        texttemplate="%{text}",
        customdata=custom,
        colorscale=SEQUENTIAL,
        zmin=0,
        showscale=show_scale,
        colorbar={"title": {"text": "share of true class" if normalize else "texts"}},
        hovertemplate="true %{customdata[0]}, predicted %{customdata[1]}<br>%{text} texts "
        "(%{customdata[2]:.1%} of the true class)<extra></extra>",
    )


def _per_class(evaluation: ClassifierEvaluation, show_legend: bool) -> list[go.Bar]:
    positions = np.arange(len(evaluation.label_names))
    names = texts(evaluation.label_names)
    support = [[int(n), names[c]] for c, n in enumerate(evaluation.support)]  # (classes, [support, name])
    return [
        go.Bar(
            x=positions,
            y=getattr(evaluation, score).astype(np.float32),
            name=SCORE_NAMES[score],
            marker={"color": color(i)},
            customdata=support,
            legendgroup="scores",
            showlegend=show_legend,
            hovertemplate=f"%{{customdata[1]}}: {SCORE_NAMES[score]} %{{y:.3f}}<br>%{{customdata[0]}} texts of this "
            "class<extra></extra>",
        )
        for i, score in enumerate(SCORES)
    ]


def _pr_curves(evaluation: ClassifierEvaluation) -> list[go.Scatter]:
    traces = []
    for c, curve in enumerate(evaluation.curves):
        ap = "n/a: no text of this class" if curve.positives == 0 else f"{curve.average_precision:.3f}"
        thresholds = np.r_[np.nan, curve.thresholds].astype(np.float32)  # the first point has no threshold
        traces.append(
            go.Scatter(
                x=curve.recall.astype(np.float32),
                y=curve.precision.astype(np.float32),
                customdata=thresholds,
                mode="lines",
                line={"color": color(c), "shape": "vh"},  # a step at each threshold, as average precision counts it
                name=f"{text(curve.label)} (AP {ap})",
                legendgroup="curves",
                hovertemplate=f"{text(curve.label)}: score ≥ %{{customdata:.3f}}<br>recall %{{x:.3f}}, "
                "precision %{y:.3f}<extra></extra>",
            )
        )
    return traces


@figure_for("workbench.explain.classifier_eval.ClassifierEvaluation")
def classifier_figure(evaluation: ClassifierEvaluation, *, view: View = "all", normalize: bool = False) -> go.Figure:
    """The confusion matrix (counts in the cells), per-class precision/recall/F1 bars and each class's
    precision–recall curve with its average precision; ``view`` picks one of them, ``normalize`` colours
    the confusion matrix by the share of each true class. Raises ``FigureError`` for an unknown view."""
    if view not in VIEWS:
        raise FigureError(f"view={view!r} is not a view of a classifier evaluation: use one of {', '.join(VIEWS)}.")
    names = evaluation.label_names
    title = (
        f"{evaluation.model} on {evaluation.data}: {len(evaluation.texts)} texts, accuracy "
        f"{evaluation.accuracy:.3f}, macro F1 {evaluation.macro_f1:.3f}"
    )
    shown = [v for v in VIEWS[1:] if view in ("all", v)]
    fig = make_subplots(
        rows=1,
        cols=len(shown),
        subplot_titles=[VIEW_TITLES[v] for v in shown] if len(shown) > 1 else None,
        horizontal_spacing=0.09,
    )
    for col, part in enumerate(shown, start=1):
        if part == "confusion":
            fig.add_trace(_confusion(evaluation, normalize, show_scale=len(shown) == 1), row=1, col=col)
            fig.update_xaxes(title_text="predicted", **_class_axis(names), row=1, col=col)
            fig.update_yaxes(title_text="true", autorange="reversed", **_class_axis(names), row=1, col=col)
        elif part == "per-class":
            for bar in _per_class(evaluation, show_legend=True):
                fig.add_trace(bar, row=1, col=col)
            fig.update_xaxes(title_text="class", **_class_axis(names), row=1, col=col)
            fig.update_yaxes(title_text="score", range=[0, 1.05], row=1, col=col)
        else:
            for curve in _pr_curves(evaluation):
                fig.add_trace(curve, row=1, col=col)
            fig.update_xaxes(title_text="recall", range=[0, 1.02], row=1, col=col)
            fig.update_yaxes(title_text="precision", range=[0, 1.05], row=1, col=col)
    return layout(
        fig,
        title,
        barmode="group",
        height=420,
        width=None if len(shown) == 1 else 1200,
        legend={"orientation": "h", "y": -0.22},
    )
