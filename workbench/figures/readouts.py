"""Figures for readouts that give a number per layer: a lens's quality, a probe's accuracy.

They carry the numbers ``workbench.ui.layer_curves`` draws: for a ``LensQualityResult`` the KL divergence
to the model's output and the perplexity of the true token per row, for the logit lens and the tuned lens;
for a ``ProbeLayersResult`` the held-out accuracy per row (a line per checkpoint), the control task's
accuracy (dotted), the majority-class baseline, and the selectivity on hover.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.figures._registry import FigureError, figure_for
from workbench.figures._style import color, layout, text, texts

if TYPE_CHECKING:
    from workbench.explain.lens_quality import LensQualityResult
    from workbench.explain.probing_result import ProbeLayersResult

__all__ = ["lens_quality_figure", "probe_layers_figure"]

MAJORITY_COLOR = "#777777"


def _row_axis(layer_names: list[str]) -> dict[str, Any]:
    """The layer rows across: embeddings first, one tick per row, labelled with the row's name."""
    return {
        "tickmode": "array",
        "tickvals": list(range(len(layer_names))),
        "ticktext": texts(layer_names),
        "title": {"text": "layer"},
    }


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise FigureError(f"{name}={value!r} is not True or False; pass {name}=True or {name}=False.")
    return bool(value)


@figure_for("workbench.explain.lens_quality.LensQualityResult")
def lens_quality_figure(result: LensQualityResult, *, log: bool = True) -> go.Figure:
    """Two panels over the layer rows: KL to the model's output (nats) and the true token's perplexity, a line
    for the logit lens and one for the tuned lens where there is one. ``log`` puts both on log axes (where the
    output row's KL of 0 is left off the line). Raises ``FigureError`` when ``log`` is not a bool.
    """
    log = _check_bool("log", log)
    rows = list(result.layer_names)
    tuned_label = result.lens or "tuned lens"
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=["KL to the model's output (nats)", "perplexity of the true token"],
        horizontal_spacing=0.1,
    )
    panels = (
        (1, "KL", "nats", result.kl_logit, result.kl_tuned),
        (2, "perplexity", "", result.perplexity_logit, result.perplexity_tuned),
    )
    for col, measure, unit, logit_values, tuned_values in panels:
        lines = [("logit lens", logit_values)] + ([(tuned_label, tuned_values)] if tuned_values is not None else [])
        for i, (label, values) in enumerate(lines):
            fig.add_trace(
                go.Scatter(
                    x=np.arange(len(rows)),
                    y=np.asarray(values, dtype=np.float64),
                    mode="lines+markers",
                    name=text(label),
                    legendgroup=text(label),
                    showlegend=col == 1,
                    line={"color": color(i)},
                    customdata=texts(rows),
                    hovertemplate=f"%{{customdata}}<br>{text(label)}: {measure} = %{{y:.4g}} {unit}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(_row_axis(rows), row=1, col=col)
        fig.update_yaxes(type="log" if log else "linear", title_text=f"{measure} {unit}".strip(), row=1, col=col)
    if result.kl_tuned is None or result.layers_better is None:
        caption = "logit lens only: pass lens= to lens_quality to compare a tuned lens"
    else:
        compared = len(rows) - 1  # the last row is the model's output: KL 0 through either lens
        caption = f"the tuned lens is closer at {round(result.layers_better * compared)} of {compared} layers"
    caption += f"; {result.positions:,} positions from {result.texts:,} texts, the last row is the model's output"
    return layout(
        fig, f"Lens quality: {result.model}", title_subtitle_text=text(caption), margin_t=90, height=420, width=980
    )


@figure_for("workbench.explain.probing_result.ProbeLayersResult")
def probe_layers_figure(result: ProbeLayersResult, *, checkpoint: int | None = None, control: bool = True) -> go.Figure:
    """Held-out accuracy per layer row: a line per checkpoint (or only ``checkpoint``, an index), the control
    task's accuracy dotted (unless ``control=False``), the majority-class baseline, the selectivity on hover.

    Raises ``FigureError`` for a ``checkpoint`` that is not an index of the result's checkpoints, or a
    ``control`` that is not a bool.
    """
    control = _check_bool("control", control)
    count = len(result.checkpoints)
    if checkpoint is None:
        chosen = list(range(count))
    elif (
        isinstance(checkpoint, (int, np.integer)) and not isinstance(checkpoint, bool) and -count <= checkpoint < count
    ):
        chosen = [int(checkpoint) % count]
    else:
        raise FigureError(
            f"checkpoint={checkpoint!r} is not one of this result's {count} checkpoints: give an index from 0 to "
            f"{count - 1} (or -1 for the last), or leave it out to draw them all."
        )
    rows = list(result.layer_names)
    x = np.arange(len(rows))
    several = count > 1
    fig = go.Figure()
    for i in chosen:
        name = f" · {result.checkpoints[i]}" if several else ""
        custom = np.array(
            [
                [text(row), float(c), float(s)]
                for row, c, s in zip(rows, result.control_accuracy[i], result.selectivity[i], strict=True)
            ],
            dtype=object,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=np.asarray(result.accuracy[i], dtype=np.float64),
                mode="lines+markers",
                name=text(f"accuracy{name}"),
                line={"color": color(i)},
                customdata=custom,
                hovertemplate=(
                    f"{text(result.checkpoints[i])}, %{{customdata[0]}}<br>accuracy %{{y:.3f}}<br>"
                    "control %{customdata[1]:.3f}<br>selectivity %{customdata[2]:+.3f}<extra></extra>"
                ),
            )
        )
        if control:
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=np.asarray(result.control_accuracy[i], dtype=np.float64),
                    mode="lines",
                    name=text(f"control ({result.control}){name}"),
                    line={"color": color(i), "dash": "dot"},
                    customdata=texts(rows),
                    hovertemplate=f"%{{customdata}}<br>control ({text(result.control)}) %{{y:.3f}}<extra></extra>",
                )
            )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=np.full(len(rows), float(result.majority)),
            mode="lines",
            name="majority class",
            line={"color": MAJORITY_COLOR, "dash": "dash", "width": 1},
            hovertemplate=f"majority class {float(result.majority):.3f}<extra></extra>",
        )
    )
    last = chosen[-1]
    best = int(np.argmax(result.accuracy[last]))
    at = f" at {result.checkpoints[last]}" if several else ""
    caption = (
        f"best layer{at}: {rows[best]} (accuracy {result.accuracy[last, best]:.3f}, selectivity "
        f"{result.selectivity[last, best]:+.3f}); {result.train_examples:,} training and {result.test_examples:,} "
        f"held-out examples; classes: {', '.join(result.label_names)}"
    )
    return layout(
        fig,
        f"Probe accuracy: {result.model} on {result.data} ({result.pooling} pooling)",
        title_subtitle_text=text(caption),
        margin_t=90,
        xaxis=_row_axis(rows),
        yaxis={"title": {"text": "held-out accuracy"}, "range": [0, 1.02]},
        height=420,
    )
