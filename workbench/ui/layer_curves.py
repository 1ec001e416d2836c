"""``LayerCurves``: one value per layer row as curves, for readouts that give a number per layer.

A ``LensQualityResult`` draws two panels, the KL divergence to the model's output and the perplexity
of the true token per row, for the logit lens and the tuned lens side by side, with the count of rows
where the tuned lens is closer. A ``ProbeLayersResult`` draws the probe's held-out accuracy per row
(one line per checkpoint, oldest lightest), the control task's accuracy and the majority-class
baseline; hover a row for the selectivity. A list of results of one kind draws one section each
(e.g. the same probe with ``pooling="cls"`` and ``pooling="mean"``).

Example::

    from workbench.explain.lens_quality import lens_quality
    from workbench.ui.layer_curves import LayerCurves
    LayerCurves(lens_quality(bundle, texts, lens=tuned))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from workbench.explain.lens_quality import LensQualityResult
from workbench.explain.probing_result import ProbeLayersResult
from workbench.ui._assets import widget_css, widget_module
from workbench.ui._standalone import standalone_page

__all__ = ["LayerCurves", "curves_payload"]

KINDS: dict[type, str] = {LensQualityResult: "lens", ProbeLayersResult: "probe"}  # result class -> payload kind


def _kind(result: object) -> str | None:
    """The payload's kind of ``result`` ("lens" or "probe"), or None for anything else."""
    return next((kind for cls, kind in KINDS.items() if isinstance(result, cls)), None)


def _values(array: Any) -> list[float | None]:
    """A 1-D array as JSON numbers, the exact float of each element; None where it is missing or not finite."""
    return [float(v) if math.isfinite(float(v)) else None for v in np.asarray(array, dtype=np.float64).ravel()]


def _check_rows(owner: str, name: str, array: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``array`` as a float array of ``shape``; raises ValueError naming the field when it has another."""
    values = np.asarray(array, dtype=np.float64)
    if values.shape != shape:
        raise ValueError(
            f"The {owner}'s {name} has shape {values.shape} but its layer_names and checkpoints ask for {shape}; "
            "build the result with one value per layer row."
        )
    return values


def _series(
    label: str, role: str, values: Any, *, shade: float = 1.0, checkpoint: int | None = None, drawn: bool = True
) -> dict[str, Any]:
    """One line of a panel: ``role`` picks its colour and dash in the view; hover-only where not ``drawn``."""
    return {
        "label": label,
        "role": role,
        "values": _values(values),
        "shade": shade,
        "checkpoint": checkpoint,
        "drawn": drawn,
    }


def _lens_section(result: LensQualityResult) -> dict[str, Any]:
    """A lens-quality result's two panels (KL, perplexity) and its caption."""
    rows = list(result.layer_names)
    shape = (len(rows),)
    tuned_label = result.lens or "tuned lens"
    panels: list[dict[str, Any]] = []
    for key, title, unit, logit_values, tuned in (
        ("kl", "KL to the model's output", "nats", result.kl_logit, result.kl_tuned),
        ("perplexity", "perplexity", "", result.perplexity_logit, result.perplexity_tuned),
    ):
        series = [_series("logit lens", "logit", _check_rows("LensQualityResult", f"{key}_logit", logit_values, shape))]
        if tuned is not None:
            series.append(_series(tuned_label, "tuned", _check_rows("LensQualityResult", f"{key}_tuned", tuned, shape)))
        panels.append({"key": key, "title": title, "unit": unit, "log": True, "range": None, "series": series})
    compared = len(rows) - 1  # the last row is the model's output: KL 0 through either lens
    if result.kl_tuned is None or result.layers_better is None:
        caption = "logit lens only: pass lens= to lens_quality to compare a tuned lens"
    else:
        caption = f"tuned lens lower KL at {round(result.layers_better * compared)} of {compared} layers"
    return {
        "title": f"Lens quality: {result.model}",
        "caption": caption,
        "info": f"{result.positions:,} positions from {result.texts:,} texts; the last row is the model's output",
        "rows": rows,
        "checkpoints": [],
        "panels": panels,
    }


def _probe_section(result: ProbeLayersResult) -> dict[str, Any]:
    """A probe result's accuracy panel: a line per checkpoint, the control task's, and the majority baseline."""
    rows = list(result.layer_names)
    checkpoints = list(result.checkpoints)
    shape = (len(checkpoints), len(rows))  # (checkpoints, rows)
    accuracy = _check_rows("ProbeLayersResult", "accuracy", result.accuracy, shape)
    control = _check_rows("ProbeLayersResult", "control_accuracy", result.control_accuracy, shape)
    selectivity = _check_rows("ProbeLayersResult", "selectivity", result.selectivity, shape)
    several = len(checkpoints) > 1
    series: list[dict[str, Any]] = []
    for i, name in enumerate(checkpoints):
        shade = 0.35 + 0.65 * i / (len(checkpoints) - 1) if several else 1.0  # oldest lightest
        label = f"accuracy · {name}" if several else "accuracy"
        series.append(_series(label, "accuracy", accuracy[i], shade=shade, checkpoint=i))
    for i, name in enumerate(checkpoints):
        label = f"control ({result.control}) · {name}" if several else f"control ({result.control})"
        series.append(_series(label, "control", control[i], checkpoint=i))
    for i, name in enumerate(checkpoints):
        label = f"selectivity · {name}" if several else "selectivity"
        series.append(_series(label, "selectivity", selectivity[i], checkpoint=i, drawn=False))
    best = int(result.best_layer(-1))
    last = checkpoints[-1] if checkpoints else ""
    at = f" at {last}" if several else ""
    caption = (
        f"best layer{at}: {rows[best]} (accuracy {accuracy[-1, best]:.3f}, selectivity {selectivity[-1, best]:+.3f})"
        f" · majority class {result.majority:.3f}"
    )
    return {
        "title": f"Probe accuracy: {result.model} on {result.data} ({result.pooling} pooling)",
        "caption": caption,
        "info": (
            f"{result.train_examples:,} training and {result.test_examples:,} held-out examples; "
            f"classes: {', '.join(result.label_names)}"
        ),
        "rows": rows,
        "checkpoints": checkpoints,
        "panels": [
            {
                "key": "accuracy",
                "title": "held-out accuracy",
                "unit": "",
                "log": False,
                "range": [0.0, 1.0],
                "series": series,
                "baselines": [{"label": "majority class", "value": float(result.majority)}],
            }
        ],
    }


def _section(result: object) -> dict[str, Any]:
    """One result's section of the payload; ``TypeError`` (one sentence) for anything but the two results."""
    if isinstance(result, LensQualityResult):
        return _lens_section(result)
    if isinstance(result, ProbeLayersResult):
        return _probe_section(result)
    raise TypeError(
        "LayerCurves takes a LensQualityResult (from lens_quality) or a ProbeLayersResult "
        f"(from probe_layers), or a list of them, got {type(result).__name__}."
    )


def curves_payload(results: object) -> dict[str, Any]:
    """What the view draws, JSON-safe: one section per result, each with its rows, panels and caption.

    Takes a ``LensQualityResult``, a ``ProbeLayersResult`` or a non-empty list of results of one of
    those kinds. Raises ``TypeError`` for anything else or for a list that mixes the two kinds, and
    ``ValueError`` for an empty list or arrays whose length does not match the result's layer rows.
    """
    many = list(results) if isinstance(results, Sequence) and not isinstance(results, (str, bytes)) else [results]
    if not many:
        raise ValueError("LayerCurves got an empty list; give it a LensQualityResult or a ProbeLayersResult.")
    sections = [_section(r) for r in many]
    kinds = [_kind(r) for r in many]
    if len(set(kinds)) > 1:
        names = " and ".join(sorted({type(r).__name__ for r in many}))
        raise TypeError(f"LayerCurves draws results of one kind, got {names}; make one view for each kind.")
    title = sections[0]["title"] if len(sections) == 1 else f"{len(sections)} results, layer by layer"
    return {"kind": kinds[0], "title": title, "sections": sections, "standalone": False}


class LayerCurves(anywidget.AnyWidget):
    """Curves over a model's layer rows for a ``LensQualityResult`` or a ``ProbeLayersResult`` (or a list of one kind).

    Hover a row for every line's value there. ``log_scale`` (a checkbox in the view) puts KL and
    perplexity on a log axis, where a zero (the output row's KL) is left out of the line; ``checkpoint``
    picks the checkpoint whose control accuracy is drawn when a probe ran over several. Raises
    ``TypeError`` for another kind of input, ``ValueError`` for an empty list or mis-shaped arrays.
    """

    _esm = widget_module("layer_curves.js")
    _css = widget_css("layer_curves.css")

    meta = traitlets.Dict({}).tag(sync=True)  # curves_payload(results)
    log_scale = traitlets.Bool(True).tag(sync=True)
    checkpoint = traitlets.Int(-1).tag(sync=True)  # index into a probe's checkpoints, -1 the latest

    def __init__(
        self,
        result: LensQualityResult | ProbeLayersResult | Sequence[LensQualityResult] | Sequence[ProbeLayersResult],
        *,
        log_scale: bool = True,
        checkpoint: int = -1,
        **kwargs: Any,
    ) -> None:
        payload = curves_payload(result)
        super().__init__(**kwargs)
        self.result = result
        with self.hold_sync():
            self.meta = payload
            self.log_scale = log_scale
            self.checkpoint = checkpoint

    def to_html(self, path: str | Path | None = None, *, memory_mb: int | None = None) -> str:
        """One standalone HTML file that opens offline with no kernel (hover and switches work); returns it.

        Written to ``path`` when given. Raises ``MemoryBudgetError`` when the page would not fit ``memory_mb``.
        """
        state = {
            "meta": {**self.meta, "standalone": True},
            "log_scale": self.log_scale,
            "checkpoint": self.checkpoint,
        }
        return standalone_page(self.meta["title"], "layer_curves", state, path=path, memory_mb=memory_mb)
