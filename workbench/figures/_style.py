"""What every figure shares: text set as text, token axes that keep repeated tokens apart, one look."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

TEMPLATE = "plotly_white"
FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12}
# Sequential (probabilities, weights) and diverging (signed attributions, effects) colour scales.
SEQUENTIAL = "Blues"
DIVERGING = "RdBu_r"
# One colour per run or method, in order; readable on white and for common colour blindness (Okabe-Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


def text(value: object) -> str:
    """``value`` as plotly shows it literally: plotly reads ``<b>``, ``<a href>`` and ``&...;`` as markup in
    every label, tick and hover text, so a token like ``<img src=x>`` must be escaped to be shown as itself."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def texts(values: Sequence[object]) -> list[str]:
    return [text(v) for v in values]


def token_labels(tokens: Sequence[str], positions: Sequence[int] | None = None) -> list[str]:
    """Tick labels for tokens, escaped; an empty or blank token shows as ``␣`` so its column keeps a name."""
    labels = []
    for token in tokens:
        shown = token if token.strip() else ("␣" * max(1, len(token)) if token else "∅")
        labels.append(text(shown))
    return labels


def token_axis(tokens: Sequence[str], positions: Sequence[int] | None = None) -> dict[str, Any]:
    """A numeric axis labelled with tokens: a categorical axis would merge two columns that read "the"."""
    values = list(range(len(tokens))) if positions is None else list(positions)
    return {"tickmode": "array", "tickvals": values, "ticktext": token_labels(tokens), "tickangle": -45}


def layout(fig: go.Figure, title: str, **extra: Any) -> go.Figure:
    """The shared look: white template, system font, a title that says what is drawn, room for labels."""
    fig.update_layout(
        template=TEMPLATE,
        font=FONT,
        title={"text": text(title), "x": 0.01, "xanchor": "left"},
        margin={"l": 70, "r": 30, "t": 60, "b": 70},
        hoverlabel={"font": {"family": FONT["family"]}},
    )
    if extra:
        fig.update_layout(**extra)
    return fig


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]
