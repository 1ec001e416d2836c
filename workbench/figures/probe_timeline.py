"""The probe timeline: what a ``ProbeRecorder``'s sentences predicted at each recorded step of a run.

``plot(recorder)`` draws one line per probe (the expected token's probability, or its rank), with the top
tokens at each step on hover.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import plotly.graph_objects as go

from workbench.figures._registry import FigureError, figure_for
from workbench.figures._style import color, layout, text

if TYPE_CHECKING:
    from workbench.explain.recorder import ProbeRecorder

__all__ = ["probe_timeline_figure"]

PROBE_NAME_CHARACTERS = 40  # a probe's sentence is cut here in the legend (hover shows it whole)


@figure_for("workbench.explain.recorder.ProbeRecorder")
def probe_timeline_figure(
    recorder: ProbeRecorder, *, value: Literal["probability", "rank"] = "probability"
) -> go.Figure:
    """One line per probe sentence across the recorded steps, the top tokens at each step on hover.

    ``value="probability"`` draws the expected token's probability (the top token's where a probe expects
    none); ``"rank"`` the expected token's rank (1 is the top; a log axis), for probes that expect a token.
    Raises ``FigureError`` when the recorder has no record yet or a bad ``value``.
    """
    if value not in ("probability", "rank"):
        raise FigureError(
            f"value={value!r} is not what a probe timeline draws: use 'probability' or 'rank' (of the expected token)."
        )
    records = recorder.timeline
    if not records:
        raise FigureError(
            "This ProbeRecorder has no records yet: it records at every evaluation (and every `every` steps); "
            "train with callbacks=[recorder] first."
        )
    probes = [(t, e) for t, e in recorder.probes]
    if value == "rank" and all(e is None for _, e in probes):
        raise FigureError(
            "No probe of this recorder expects a token, so there is no rank to draw; use value='probability'."
        )
    fig = go.Figure()
    steps = np.array([int(r["step"]) for r in records], dtype=np.int64)
    for j, (sentence, expected) in enumerate(probes):
        if value == "rank" and expected is None:
            continue
        entries = [r["probes"][j] for r in records]
        expects = entries[0]["expected"] is not None
        if value == "rank":
            y = np.array([math.nan if p["rank"] is None else p["rank"] + 1 for p in entries], dtype=np.float64)
        elif expects:
            y = np.array([math.nan if p["probability"] is None else p["probability"] for p in entries])
        else:
            y = np.array([p["top"][0][1] for p in entries], dtype=np.float64)
        short = sentence if len(sentence) <= PROBE_NAME_CHARACTERS else sentence[: PROBE_NAME_CHARACTERS - 1] + "…"
        target = f" → {entries[0]['expected']!r}" if expects else " (top token)"
        custom = np.array(
            [[text(sentence), _probe_answer(p), _top_tokens(p)] for p in entries], dtype=object
        )  # (records, 3)
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=y.astype(np.float32),
                customdata=custom,
                name=text(short + target),
                mode="lines+markers",
                line={"color": color(j)},
                hovertemplate="%{customdata[0]}<br>step %{x}<br>%{customdata[1]}<br>"
                "top: %{customdata[2]}<extra></extra>",
            )
        )
    axis = (
        {"title": "rank of the expected token (1 = top)", "type": "log", "autorange": "reversed"}
        if value == "rank"
        else {"title": "probability", "rangemode": "tozero"}  # early in training every probe is near 0
    )
    return layout(
        fig,
        f"What the probes predict, step by step ({len(records)} records)",
        xaxis={"title": "step"},
        yaxis=axis,
        legend={"title": {"text": "probe"}},
    )


def _probe_answer(entry: dict[str, Any]) -> str:
    if entry["expected"] is None:
        token, probability = entry["top"][0]
        return f"top token {text(repr(token))}: p = {probability:.3f}"
    return f"{text(repr(entry['expected']))}: p = {entry['probability']:.4f}, rank {entry['rank'] + 1}"


def _top_tokens(entry: dict[str, Any]) -> str:
    return ", ".join(f"{text(repr(token))} {probability:.3f}" for token, probability in entry["top"])
