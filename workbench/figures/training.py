"""Figures of training runs: one run's curves, several runs overlaid, and (from ``probe_timeline``) the probes.

``plot(history)`` (a ``TrainingHistory``, a Trainer or job, or a run folder holding the ``metrics.jsonl`` the
Trainer writes) draws the training and evaluation loss, the learning rate and the tokens per second on one
shared x axis. ``compare_runs([...])`` overlays several runs, one colour per run in every panel; clicking a
run in the legend hides it everywhere. ``plot(recorder)`` draws a ``ProbeRecorder``'s timeline (``probe_timeline.py``).

Example::

    fig = compare_runs(["runs/lr-1e-3", "runs/lr-3e-4"], metrics=("loss", "eval_loss"), x="tokens")
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.figures._registry import FigureError, figure_for
from workbench.figures._style import color, layout, text
from workbench.figures.probe_timeline import probe_timeline_figure
from workbench.training.history import TrainingHistory

__all__ = [
    "DEFAULT_METRICS",
    "compare_runs",
    "history_figure",
    "probe_timeline_figure",
    "read_metrics",
    "run_folder_figure",
]


DEFAULT_METRICS = ("loss", "eval_loss", "learning_rate", "tokens_per_second")
DEFAULT_SMOOTHING = 0.6  # the weight of the past in the loss's moving average, as TensorBoard's slider
XAxis = Literal["step", "tokens", "time"]
X_AXES: tuple[XAxis, ...] = ("step", "tokens", "time")
# x option -> (the record field, the axis title)
X_FIELDS: dict[str, tuple[str, str]] = {
    "step": ("step", "step"),
    "tokens": ("tokens_seen", "tokens seen"),
    "time": ("elapsed_seconds", "seconds of training"),
}
METRIC_TITLES = {
    "loss": "training loss",
    "smoothed_loss": "training loss (the run's moving average)",
    "eval_loss": "evaluation loss",
    "eval_perplexity": "evaluation perplexity",
    "eval_accuracy": "evaluation accuracy",
    "eval_macro_f1": "evaluation macro F1",
    "learning_rate": "learning rate",
    "tokens_per_second": "tokens / s",
    "grad_norm": "gradient norm",
}


@dataclass(frozen=True)
class _Series:
    """One metric of one run: ``x`` and ``y`` ``(points,)``, with each point's step and tokens seen for hover."""

    x: np.ndarray
    y: np.ndarray
    steps: np.ndarray
    tokens: np.ndarray


# ------------------------------------------------------------------------------------------------ reading runs


def read_metrics(folder: str | os.PathLike[str]) -> TrainingHistory:
    """``TrainingHistory.load(folder)``, refused with ``FigureError`` when it holds no training record yet."""
    history = TrainingHistory.load(folder)
    if not history.train:
        raise FigureError(
            f"{Path(folder)} holds no training records yet; plot it once the run has trained for log_every steps "
            "(TrainConfig(log_every=...))."
        )
    return history


def _run(run: object, position: int) -> tuple[TrainingHistory, str]:
    """A run's history and its default name; ``FigureError`` for something that is not a run."""
    if isinstance(run, TrainingHistory):
        return run, f"run {position + 1}"
    if isinstance(run, (str, os.PathLike)):
        path = Path(run).expanduser()
        return read_metrics(path), path.resolve().name or str(path)
    history = getattr(run, "history", None)
    if isinstance(history, TrainingHistory):
        trainer = getattr(run, "trainer", run)  # a TrainingJob holds its trainer
        config = getattr(trainer, "config", None)
        output_dir = getattr(config, "output_dir", None)
        bundle = getattr(trainer, "bundle", None)
        name = Path(output_dir).name if output_dir else getattr(bundle, "name", None) or f"run {position + 1}"
        return history, str(name)
    raise FigureError(
        f"Run {position + 1} is a {type(run).__name__}, not a run; give TrainingHistory objects, Trainers "
        "(or their jobs), or run folders holding metrics.jsonl."
    )


def _checked_x(x: object) -> XAxis:
    for axis in X_AXES:
        if x == axis:
            return axis
    raise FigureError(f"x={x!r} is not an axis of a run: use 'step', 'tokens' (tokens seen) or 'time' (seconds).")


def _checked_smoothing(smooth: object) -> float:
    if isinstance(smooth, bool) or not isinstance(smooth, (int, float)) or not 0 <= smooth < 1:
        raise FigureError(
            f"smooth={smooth!r} is not a smoothing weight: give a number from 0 (none) up to, not including, 1 "
            f"(such as {DEFAULT_SMOOTHING})."
        )
    return float(smooth)


# --------------------------------------------------------------------------------------------- series


def _number(value: object, metric: str) -> float:
    if value is None:  # MetricsWriter writes a NaN or an infinity as null
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FigureError(f"The metric {metric!r} is a {type(value).__name__}, not a number; it cannot be drawn.")
    return float(value)


def _series(history: TrainingHistory, metric: str, x: str) -> _Series | None:
    """``metric`` of one run against ``x``, or None when the run did not log it.

    Evaluation records hold only the step: their tokens seen and time are read off the training records
    at that step (interpolated between two logs)."""
    train = history.train
    is_eval = metric.startswith("eval_")
    records = [r for r in (history.eval if is_eval else train) if metric in r]
    if not records:
        return None
    steps = np.array([int(r["step"]) for r in records], dtype=np.int64)
    y = np.array([_number(r[metric], metric) for r in records], dtype=np.float64)

    def along(field: str) -> np.ndarray:
        if not is_eval:
            return np.array([_number(r.get(field), field) for r in records], dtype=np.float64)
        if not train:
            return np.full(len(records), math.nan)
        values = np.array([_number(r.get(field), field) for r in train], dtype=np.float64)
        return np.interp(steps, [int(r["step"]) for r in train], values)

    tokens = along("tokens_seen")
    xs = steps.astype(np.float64) if x == "step" else (tokens if x == "tokens" else along("elapsed_seconds"))
    return _Series(x=xs, y=y, steps=steps, tokens=tokens)


def moving_average(values: np.ndarray, smooth: float) -> np.ndarray:
    """The exponential moving average ``m[i] = smooth * m[i - 1] + (1 - smooth) * values[i]``, from ``values[0]``;
    a missing value (NaN) keeps the average where it was."""
    out = np.empty_like(values, dtype=np.float64)
    average = math.nan
    for i, v in enumerate(values):
        if not math.isnan(v):
            average = v if math.isnan(average) else smooth * average + (1 - smooth) * v
        out[i] = average
    return out


def _hover(label: str, run: str) -> str:
    return (
        "step %{customdata[0]}<br>%{customdata[1]:,.0f} tokens seen<br>"
        f"{text(label)} %{{y:.4g}}<extra>{text(run)}</extra>"
    )


def _trace(
    series: _Series, y: np.ndarray, *, name: str, label: str, run: str, x: str, colour: str, **style: Any
) -> go.Scatter:
    return go.Scatter(
        x=series.steps if x == "step" else series.x,
        y=y.astype(np.float32),  # 7 digits, more than a curve shows, in half the JSON of float64
        customdata=np.stack([series.steps, series.tokens], axis=1),  # (points, [step, tokens seen])
        name=text(name),
        mode="lines+markers" if len(y) < 30 else "lines",
        marker={"size": 5},
        line={"color": colour},
        hovertemplate=_hover(label, run),
        **style,
    )


def _loss_traces(
    series: _Series, smooth: float, *, name: str, run: str, x: str, colour: str, group: str, legend: bool
) -> list[go.Scatter]:
    """The training loss: raw, and where ``smooth`` > 0 its moving average drawn over the raw one, faint."""
    common = {"run": run, "x": x, "colour": colour, "legendgroup": group}
    if smooth == 0:
        return [_trace(series, series.y, name=name, label="loss", showlegend=legend, **common)]
    raw = _trace(series, series.y, name=f"{name} (raw)", label="loss", opacity=0.3, showlegend=False, **common)
    averaged = _trace(
        series,
        moving_average(series.y, smooth),
        name=name,
        label=f"loss, moving average ({smooth:g})",
        showlegend=legend,
        **common,
    )
    return [raw, averaged]


# ----------------------------------------------------------------------------------------------- one run


def _run_figure(history: TrainingHistory, name: str, x: str, smooth: float) -> go.Figure:
    """Loss (training and evaluation) over the learning rate and the tokens per second, on one x axis."""
    x, smooth = _checked_x(x), _checked_smoothing(smooth)
    loss = _series(history, "loss", x)
    if loss is None:
        raise FigureError(
            f"The run {name} holds no training records yet; plot it once it has trained for log_every steps "
            "(TrainConfig(log_every=...))."
        )
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        row_heights=[0.56, 0.22, 0.22],
    )
    for trace in _loss_traces(
        loss, smooth, name="training loss", run=name, x=x, colour=color(0), group="loss", legend=True
    ):
        fig.add_trace(trace, row=1, col=1)
    # A loss of several parts (ELECTRA: generator + λ · discriminator) logs each part as "<part>_loss".
    for index, part in enumerate(history.loss_parts()):
        series = _series(history, part, x)
        if series is not None:
            label = part.removesuffix("_loss").replace("_", " ") + " loss"
            fig.add_trace(
                _trace(series, series.y, name=label, label=label, run=name, x=x, colour=color(4 + index)).update(
                    line={"dash": "dash"}
                ),
                row=1,
                col=1,
            )
    evaluation = _series(history, "eval_loss", x)
    if evaluation is not None:
        fig.add_trace(
            _trace(
                evaluation, evaluation.y, name="evaluation loss", label="eval loss", run=name, x=x, colour=color(1)
            ).update(mode="lines+markers", marker={"size": 7}),
            row=1,
            col=1,
        )
    for row, metric in ((2, "learning_rate"), (3, "tokens_per_second")):
        series = _series(history, metric, x)
        if series is not None:
            label = METRIC_TITLES[metric]
            fig.add_trace(
                _trace(series, series.y, name=label, label=label, run=name, x=x, colour=color(row), showlegend=False),
                row=row,
                col=1,
            )
    fig.update_xaxes(title_text=X_FIELDS[x][1], row=3, col=1)
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="learning rate", exponentformat="e", row=2, col=1)
    fig.update_yaxes(title_text="tokens / s", row=3, col=1)
    last = loss.y[~np.isnan(loss.y)]
    summary = f", last loss {last[-1]:.4g}" if len(last) else ""
    return layout(
        fig,
        f"Training run {name}: {int(loss.steps[-1])} steps{summary}",
        height=620,
        hovermode="x unified",
        legend={"orientation": "h", "y": 1.08, "x": 1, "xanchor": "right"},
    )


@figure_for("workbench.training.history.TrainingHistory")
def history_figure(
    history: TrainingHistory, *, x: XAxis = "step", smooth: float = DEFAULT_SMOOTHING, name: str = "run"
) -> go.Figure:
    """A run's loss and evaluation loss, with its learning rate and tokens per second below on the same x.

    ``x`` is ``"step"``, ``"tokens"`` (tokens seen) or ``"time"`` (seconds); ``smooth`` (0 to below 1) draws
    the training loss's moving average over the raw loss, faint. Raises ``FigureError`` for a history with no
    training record or a bad option.
    """
    return _run_figure(history, name, x, smooth)


@figure_for("pathlib.Path")
def run_folder_figure(
    folder: str | os.PathLike[str], *, x: XAxis = "step", smooth: float = DEFAULT_SMOOTHING
) -> go.Figure:
    """``history_figure`` of a run folder's ``metrics.jsonl`` (see ``read_metrics``), named by the folder."""
    history, name = _run(folder, 0)
    return _run_figure(history, name, x, smooth)


@figure_for("workbench.training.loop.Trainer")
@figure_for("workbench.training.launch.DistributedTrainer")
@figure_for("workbench.training.job.TrainingJob")
def trainer_figure(run: object, *, x: XAxis = "step", smooth: float = DEFAULT_SMOOTHING) -> go.Figure:
    """``history_figure`` of a Trainer's (or a job's) history so far, named by its output folder or model."""
    history, name = _run(run, 0)
    return _run_figure(history, name, x, smooth)


# ------------------------------------------------------------------------------------------ several runs


def compare_runs(
    runs: Sequence[object],
    *,
    names: Sequence[str] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    x: XAxis = "step",
    smooth: float = 0.0,
) -> go.Figure:
    """Several runs overlaid: one panel per metric, sharing x, one colour per run in every panel.

    ``runs`` are ``TrainingHistory`` objects, Trainers (or their jobs) or run folders; each is named by
    ``names`` or else by its folder (a Trainer: its output folder, or its model). ``metrics`` are the names
    the runs logged (training: ``loss``, ``learning_rate``, ``tokens_per_second``, ``grad_norm`` ...;
    evaluation: ``eval_loss``, ``eval_accuracy`` ...); a run that did not log one is missing from its panel.
    ``smooth`` > 0 draws the training loss's moving average over the raw loss. Clicking a run in the legend
    hides it in every panel. Raises ``FigureError`` for no runs, a thing that is not a run, names that do
    not match the runs, or a metric no run logged.

    Example::

        compare_runs([trainer_a, "runs/b"], names=["lr 1e-3", "lr 3e-4"], metrics=("loss", "eval_loss"))
    """
    if isinstance(runs, (str, os.PathLike, TrainingHistory)) or not isinstance(runs, Sequence):
        raise FigureError(
            f"compare_runs takes a list of runs, got a {type(runs).__name__}; put the runs in a list "
            "(plot(run) draws one run)."
        )
    if not runs:
        raise FigureError("compare_runs got an empty list; give it the runs to compare (histories, Trainers, folders).")
    if names is not None and (isinstance(names, str) or len(names) != len(runs)):
        count = "one string" if isinstance(names, str) else f"{len(names)} names"
        raise FigureError(f"compare_runs got {len(runs)} runs but {count}; give one name per run.")
    chosen = [metrics] if isinstance(metrics, str) else list(metrics)
    if not chosen or not all(isinstance(m, str) for m in chosen):
        raise FigureError(f"metrics={metrics!r} names no metric; give names such as {DEFAULT_METRICS}.")
    x, smooth = _checked_x(x), _checked_smoothing(smooth)
    loaded = [_run(run, i) for i, run in enumerate(runs)]
    labels = _distinct([str(n) for n in names] if names is not None else [name for _, name in loaded])
    series = {m: [_series(history, m, x) for history, _ in loaded] for m in chosen}
    missing = [m for m in chosen if all(s is None for s in series[m])]
    if missing:
        fields = {k for history, _ in loaded for r in history.records if r["kind"] in ("train", "eval") for k in r}
        logged = sorted(fields - {"kind", "step"})
        raise FigureError(f"No run logged {', '.join(map(repr, missing))}; these runs logged: {', '.join(logged)}.")
    fig = make_subplots(
        rows=len(chosen),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=min(0.08, 0.3 / len(chosen)),
    )
    shown: set[int] = set()  # runs that have their legend entry already
    for row, metric in enumerate(chosen, start=1):
        label = METRIC_TITLES.get(metric, metric)
        for i, (one, name) in enumerate(zip(series[metric], labels, strict=True)):
            if one is None:
                continue
            legend, group = i not in shown, f"run {i}"
            shown.add(i)
            if metric == "loss":
                traces = _loss_traces(
                    one, smooth, name=name, run=name, x=x, colour=color(i), group=group, legend=legend
                )
            else:
                traces = [
                    _trace(
                        one,
                        one.y,
                        name=name,
                        label=label,
                        run=name,
                        x=x,
                        colour=color(i),
                        legendgroup=group,
                        showlegend=legend,
                    )
                ]
            for trace in traces:
                fig.add_trace(trace, row=row, col=1)
        fig.update_yaxes(title_text=text(label), row=row, col=1)
    fig.update_xaxes(title_text=X_FIELDS[x][1], row=len(chosen), col=1)
    return layout(
        fig,
        f"{len(runs)} runs compared: {', '.join(METRIC_TITLES.get(m, m) for m in chosen)}",
        height=max(360, 210 * len(chosen)),
        hovermode="x unified",
        legend={"title": {"text": "run"}, "groupclick": "togglegroup"},
    )


def _distinct(names: list[str]) -> list[str]:
    """The names with a repeated one numbered (``tiny-bert``, ``tiny-bert (2)``), so the legend tells them apart."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out
