"""The figure of a replaced-token probe: one bar per token, its height the probability it was replaced."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from workbench.figures._registry import figure_for
from workbench.figures._style import DIVERGING, layout, text, token_axis, token_labels
from workbench.figures.attribution import NOT_A_FEATURE


def probability_colors(probabilities: np.ndarray, special: np.ndarray) -> list[str]:
    """The attribution figures' diverging scale read from 0 to 1: red above one half (replaced), blue below
    (original), white at one half; grey for special tokens, which the discriminator does not judge."""
    sampled = sample_colorscale(DIVERGING, [float(p) for p in np.clip(probabilities, 0.0, 1.0)])
    return [NOT_A_FEATURE if s else c for c, s in zip(sampled, special, strict=True)]


@figure_for("workbench.explain.replaced_tokens.ReplacedTokenResult")
def replaced_tokens_figure(result: Any) -> go.Figure:
    """One bar per token (x: the tokens in order, y: the probability it was replaced), a dashed line at one half;
    red bars the discriminator thinks replaced, blue ones original, grey special tokens."""
    probabilities = np.asarray(result.probabilities, dtype=np.float64)  # (tokens,)
    special = np.asarray(result.tokens.special, dtype=bool)
    kind = np.where(special, " (special token)", "").astype(object)
    fig = go.Figure(
        go.Bar(
            x=np.arange(len(probabilities)),
            y=probabilities,
            customdata=np.stack([np.array(token_labels(result.tokens.text), dtype=object), kind], axis=-1),
            marker_color=probability_colors(probabilities, special),
            hovertemplate="%{x}: %{customdata[0]}%{customdata[1]}<br>p(replaced) = %{y:.3f}<extra></extra>",
        )
    )
    fig.add_hline(y=0.5, line_dash="dash", line_color="#7f7f7f")
    fig.update_xaxes(title_text="token", **token_axis(result.tokens.text))
    fig.update_yaxes(title_text=text("p(replaced)"), range=[0, 1])
    title = f"Replaced-token detection by {result.model} on “{textwrap.shorten(result.text, 50, placeholder='…')}”"
    return layout(fig, title, showlegend=False, bargap=0.15)
