"""Figures for what a model predicts: the logit (or tuned) lens, a masked word's candidates, a generation.

``plot(logit_lens(...))`` draws layers up, token positions across, the top token written in each cell and
its probability as colour; a list of lens results on one text (the logit lens and a tuned lens) draws them
side by side on one colour scale. ``plot(fill_mask(...))`` draws each mask's top-k candidates as bars, and
``plot(generate(...))`` each generated token's probability, beside the plain run when it was steered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.figures._registry import FigureError, figure_for
from workbench.figures._style import SEQUENTIAL, color, layout, text, texts, token_axis, token_labels

if TYPE_CHECKING:
    from workbench.explain.generate import GeneratedToken, GenerationResult
    from workbench.explain.lens import LogitLensResult
    from workbench.explain.probe import FillMaskResult

__all__ = ["fill_mask_figure", "generation_figure", "logit_lens_figure", "logit_lens_figures"]

LensColor = Literal["top", "target"]
LENS_COLORS: tuple[LensColor, ...] = ("top", "target")
CELL_CHARACTERS = 8  # a cell's token is cut after this many characters (hover shows it whole)


def shown_token(token: str) -> str:
    """A token as a reader can see it, not yet escaped: a blank one as ``␣`` per space, an empty one as ``∅``."""
    return token if token.strip() else ("␣" * len(token) if token else "∅")


def cell_token(token: str, limit: int = CELL_CHARACTERS) -> str:
    """A token short enough for a heatmap cell, escaped (cut before escaping, so no entity is cut in half)."""
    shown = shown_token(token)
    return text(shown if len(shown) <= limit else shown[: limit - 1] + "…")


def check_k(k: object, available: int, what: str) -> int:
    """``k`` as a count of 1 to ``available``; ``FigureError`` with one sentence otherwise."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= int(k) <= available:
        raise FigureError(
            f"k={k!r} is out of range: this result holds {available} {what}, "
            f"so give a whole number from 1 to {available}."
        )
    return int(k)


def _check_color(value: object) -> LensColor:
    if value not in LENS_COLORS:
        raise FigureError(
            f"color={value!r} is not a lens colouring: use 'top' (the top token's probability) or 'target' "
            "(the target token's probability)."
        )
    return "top" if value == "top" else "target"


def _lens_heatmap(result: LogitLensResult, color_by: LensColor, k: int) -> go.Heatmap:
    """One lens's cells: ``z`` ``(rows, columns)`` is the top token's (or the target's) probability."""
    rows, columns = result.top_probs.shape[:2]
    z = result.top_probs[:, :, 0] if color_by == "top" else result.target_probs  # (rows, columns)
    cells = [[cell_token(result.top_tokens[r][c][0]) for c in range(columns)] for r in range(rows)]
    token_at = [text(repr(result.tokens.text[p])) for p in result.positions]
    target = text(repr(result.target_name))
    custom = np.empty((rows, columns, 3), dtype=object)  # (rows, columns, [where, top-k, target])
    for r in range(rows):
        for c in range(columns):
            top = "<br>".join(
                f"  {text(repr(result.top_tokens[r][c][i]))} {float(result.top_probs[r, c, i]):.3f}" for i in range(k)
            )
            custom[r, c, 0] = f"{text(result.layer_names[r])}, position {result.positions[c]} {token_at[c]}"
            custom[r, c, 1] = top
            custom[r, c, 2] = (
                f"p({target}) = {float(result.target_probs[r, c]):.4f}, rank {int(result.target_ranks[r, c]) + 1}"
            )
    return go.Heatmap(
        z=np.asarray(z, dtype=np.float32),
        x=np.arange(columns),
        y=np.arange(rows),
        text=cells,
        texttemplate="%{text}",
        customdata=custom,
        hovertemplate="%{customdata[0]}<br>top tokens:<br>%{customdata[1]}<br>%{customdata[2]}<extra></extra>",
        coloraxis="coloraxis",
        xgap=1,
        ygap=1,
    )


def _lens_axes(result: LogitLensResult) -> tuple[dict[str, Any], dict[str, Any]]:
    """The x axis (the tokens read, one column each) and the y axis (embeddings at the bottom, output on top)."""
    tokens = [result.tokens.text[p] for p in result.positions]
    x = {**token_axis(tokens), "title": {"text": "token position"}}
    y = {
        "tickmode": "array",
        "tickvals": list(range(len(result.layer_names))),
        "ticktext": texts(result.layer_names),
        "title": {"text": "layer"},
    }
    return x, y


def _coloraxis(color_by: LensColor, target_name: str) -> dict[str, Any]:
    title = "p(top token)" if color_by == "top" else f"p({text(repr(target_name))})"
    return {"colorscale": SEQUENTIAL, "cmin": 0.0, "cmax": 1.0, "colorbar": {"title": {"text": title}}}


def _lens_title(result: LogitLensResult, lenses: str) -> str:
    where = f"the target {result.target_name!r} is read at position {result.read_position}"
    return f"{lenses}: {result.model} on {result.text!r} ({where})"


@figure_for("workbench.explain.lens.LogitLensResult")
def logit_lens_figure(result: LogitLensResult, *, color: LensColor = "top", k: int | None = None) -> go.Figure:
    """Layers (embeddings at the bottom) × positions, each cell's top token written in it.

    ``color="top"`` colours a cell by its top token's probability, ``"target"`` by the target's; hover
    shows the top ``k`` tokens (default: all the lens kept), and the target's probability and rank.
    Raises ``FigureError`` for an unknown ``color`` or a ``k`` larger than the lens kept (``top_k``).
    """
    color_by = _check_color(color)
    kept = result.top_probs.shape[2]
    k = kept if k is None else check_k(k, kept, "top tokens")
    fig = go.Figure(_lens_heatmap(result, color_by, k))
    x, y = _lens_axes(result)
    return layout(
        fig,
        _lens_title(result, result.lens.capitalize()),
        xaxis=x,
        yaxis=y,
        coloraxis=_coloraxis(color_by, result.target_name),
        height=max(320, 22 * result.num_rows + 160),
    )


@figure_for("workbench.explain.lens.LogitLensResult", many=True)
def logit_lens_figures(
    results: Sequence[LogitLensResult], *, color: LensColor = "top", k: int | None = None
) -> go.Figure:
    """Several lenses on one text side by side (the logit lens beside a tuned lens), on one colour scale.

    Each panel is titled by its lens. Raises ``FigureError`` when the results are not all lens results
    of one model on one text and positions, or for a bad ``color`` or ``k``.
    """
    from workbench.explain.lens import LogitLensResult

    if not all(isinstance(r, LogitLensResult) for r in results):
        names = sorted({type(r).__name__ for r in results})
        raise FigureError(f"A list of lenses takes only LogitLensResult, got {', '.join(names)}; plot them apart.")
    first = results[0]
    for other in results[1:]:
        same = (other.model, other.text, other.positions, other.layer_names) == (
            first.model,
            first.text,
            first.positions,
            first.layer_names,
        )
        if not same:
            raise FigureError(
                "Lenses drawn side by side must read one model on one text at the same positions; got "
                f"{first.model} on {first.text!r} and {other.model} on {other.text!r}: plot them one at a time."
            )
    color_by = _check_color(color)
    kept = min(r.top_probs.shape[2] for r in results)
    k = kept if k is None else check_k(k, kept, "top tokens")
    fig = make_subplots(
        rows=1,
        cols=len(results),
        shared_yaxes=True,
        horizontal_spacing=0.03,
        subplot_titles=[text(r.lens) for r in results],
    )
    x, y = _lens_axes(first)
    for i, result in enumerate(results, start=1):
        fig.add_trace(_lens_heatmap(result, color_by, k), row=1, col=i)
        fig.update_xaxes(x, row=1, col=i)
    fig.update_yaxes(y, row=1, col=1)
    return layout(
        fig,
        _lens_title(first, " vs ".join(r.lens for r in results)),
        coloraxis=_coloraxis(color_by, first.target_name),
        height=max(320, 22 * first.num_rows + 160),
        width=max(700, 420 * len(results)),
    )


def add_probability_bars(
    fig: go.Figure, tokens: Sequence[str], probabilities: np.ndarray, *, name: str, colour: str, col: int
) -> None:
    """Horizontal bars of ``probabilities`` (the likeliest on top) labelled with ``tokens``, in panel ``col``."""
    fig.add_trace(
        go.Bar(
            x=probabilities,
            y=np.arange(len(tokens)),
            orientation="h",
            name=text(name),
            marker_color=colour,
            text=[f"{p:.3f}" for p in probabilities],
            textposition="auto",
            customdata=[text(repr(t)) for t in tokens],
            hovertemplate="%{customdata}: p = %{x:.4f}<extra></extra>",
            showlegend=False,
        ),
        row=1,
        col=col,
    )
    fig.update_yaxes(
        tickmode="array",
        tickvals=list(range(len(tokens))),
        ticktext=token_labels(tokens),
        autorange="reversed",
        row=1,
        col=col,
    )
    fig.update_xaxes(title_text="probability", range=[0, 1], row=1, col=col)


@figure_for("workbench.explain.probe.FillMaskResult")
def fill_mask_figure(result: FillMaskResult, *, k: int | None = None) -> go.Figure:
    """One panel per mask: its top ``k`` candidates (default all kept) as bars of probability, the likeliest
    on top; one more panel per run of adjacent masks, its whole words by joint probability.

    Raises ``FigureError`` for a result with no masks or a ``k`` larger than the predictions kept.
    """
    panels: list[tuple[str, list[str], np.ndarray]] = []  # (title, tokens, probabilities)
    if not result.predictions:
        raise FigureError("This fill-mask result holds no masks; run fill_mask on a text with [MASK] in it.")
    kept = min(len(p.tokens) for p in result.predictions)
    k = kept if k is None else check_k(k, kept, "candidates")
    for prediction in result.predictions:
        probabilities = np.asarray(prediction.probabilities[:k], dtype=np.float32)
        panels.append((f"mask at position {prediction.position}", prediction.tokens[:k], probabilities))
    for word in result.words():
        positions = word["positions"]
        candidates = word["candidates"][:k]
        title = f"word at positions {positions[0]}–{positions[-1]} (joint)"
        panels.append((title, [c[0] for c in candidates], np.asarray([c[1] for c in candidates], dtype=np.float32)))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[text(p[0]) for p in panels], horizontal_spacing=0.12)
    for i, (title, tokens, probabilities) in enumerate(panels, start=1):
        add_probability_bars(fig, tokens, probabilities, name=title, colour=color(0), col=i)
    return layout(
        fig,
        f"Fill the mask: {result.model} on {result.text!r}",
        height=max(300, 26 * k + 160),
        width=max(520, 360 * len(panels)),
    )


def _generation_bars(steps: list[GeneratedToken], k: int, shade: str, name: str) -> go.Bar:
    probabilities = np.asarray([s.probability for s in steps], dtype=np.float32)  # (steps,)
    alternatives = [
        "<br>".join(f"  {text(repr(t))} {p:.3f}" for t, p in s.alternatives[:k]) or "  (none kept)" for s in steps
    ]
    custom = np.array([[text(repr(s.token)), a] for s, a in zip(steps, alternatives, strict=True)], dtype=object)
    return go.Bar(
        x=np.arange(len(steps)),
        y=probabilities,
        name=text(name),
        marker_color=shade,
        customdata=custom.reshape(len(steps), 2),
        hovertemplate="step %{x}: %{customdata[0]}, p = %{y:.4f}<br>top tokens:<br>%{customdata[1]}<extra></extra>",
    )


@figure_for("workbench.explain.generate.GenerationResult")
def generation_figure(result: GenerationResult, *, k: int | None = None) -> go.Figure:
    """Each generated token's probability under the model, the token on the axis and its top ``k`` rivals on
    hover (default: all kept); a steered generation is drawn above the plain one from the same seed.

    Raises ``FigureError`` for a ``k`` larger than the alternatives kept at each step.
    """
    kept = max((len(s.alternatives) for s in result.steps), default=0)
    k = max(1, kept) if k is None else check_k(k, max(1, kept), "alternatives per step")
    runs: list[tuple[str, GenerationResult]] = [("generated", result)]
    if result.plain is not None and result.steer is not None:
        steer = result.steer
        runs = [
            (f"steered (layer {steer['layer']}, coefficient {steer['coefficient']:+g})", result),
            ("plain (same seed)", result.plain),
        ]
    fig = make_subplots(rows=len(runs), cols=1, subplot_titles=[text(name) for name, _ in runs], vertical_spacing=0.25)
    for i, (name, run) in enumerate(runs, start=1):
        if run.steps:
            fig.add_trace(_generation_bars(run.steps, k, color(i - 1), name), row=i, col=1)
        fig.update_xaxes(
            {**token_axis([s.token for s in run.steps]), "title": {"text": "generated token"}}, row=i, col=1
        )
        fig.update_yaxes(title_text="probability", range=[0, 1], row=i, col=1)
    stopped = "" if result.stopped_by == "max_new_tokens" else f", stopped by {result.stopped_by}"
    return layout(
        fig,
        f"Generation: {result.model} after {result.prompt!r}{stopped}",
        showlegend=False,
        height=320 * len(runs),
    )
