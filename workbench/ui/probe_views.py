"""Probe views: ``MaskProbe`` (type a sentence, see the guesses and the logit lens, pick a checkpoint;
with a trained tuned lens, switch the lens grid between the two) and ``ProbeTimeline`` (watch the
expected tokens climb while a model trains).

Example::

    MaskProbe(bundle, "To be, or not to [MASK].")          # or MaskProbe("runs/bert") for its checkpoints
    MaskProbe(bundle, "The capital of France is", tuned_lens="runs/lens")   # a "logit lens | tuned lens" switch
    recorder = ProbeRecorder([("To be, or not to [MASK].", "be")], every=20)
    ProbeTimeline(recorder)                                  # live while dashboard.run(trainer) trains
"""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import traitlets

from workbench.errors import WorkbenchError
from workbench.explain.compare import Models, load_resolved, resolve_models
from workbench.ui._assets import widget_css, widget_module

if TYPE_CHECKING:
    from workbench.explain.tuned_lens import TunedLens
    from workbench.models import ModelBundle

__all__ = ["MaskProbe", "ProbeTimeline"]

LOADED_CHECKPOINTS = 4  # models kept in memory while the slider moves


class MaskProbe(anywidget.AnyWidget):
    """A text box whose guesses update as you type; top-k bars, the logit lens, and a checkpoint slider.

    ``tuned_lens`` (a ``TunedLens``, or a file, folder or run that ``load_tuned_lens`` reads) adds a
    "logit lens | tuned lens" switch (``lens_kind``); where the shown checkpoint is not the model the
    lens was trained for, the view says why in its status and shows the logit lens. Raises ``TypeError``
    for models it cannot show and ``ProbeError`` for a ``tuned_lens`` path that holds no lens.
    """

    _esm = widget_module("mask_probe.js")
    _css = widget_css("probe.css")

    text = traitlets.Unicode("").tag(sync=True)
    top_k = traitlets.Int(5).tag(sync=True)
    show_lens = traitlets.Bool(True).tag(sync=True)
    checkpoints: traitlets.List[str] = traitlets.List([]).tag(sync=True)
    checkpoint = traitlets.Int(0).tag(sync=True)
    result = traitlets.Dict({}).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    lens_kind = traitlets.Enum(["logit", "tuned"], "logit").tag(sync=True)  # which lens the grid shows
    tuned_label = traitlets.Unicode("").tag(sync=True)  # the tuned lens's label; "" (no switch) without one

    def __init__(
        self,
        models: Models,
        text: str = "",
        *,
        top_k: int = 5,
        lens: bool = True,
        tuned_lens: TunedLens | str | os.PathLike[str] | None = None,
        checkpoint: int = -1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._models = resolve_models(models, "MaskProbe")
        self._tuned: TunedLens | None = None
        if tuned_lens is not None:
            from workbench.explain.tuned_lens import load_tuned_lens

            self._tuned = load_tuned_lens(tuned_lens)
        self._loaded: OrderedDict[int, ModelBundle] = OrderedDict()
        with self.hold_sync():
            self.checkpoints = [label for label, _ in self._models]
            self.checkpoint = checkpoint % len(self._models)
            self.top_k = top_k
            self.show_lens = lens
            self.tuned_label = self._tuned.label if self._tuned is not None else ""
            self.text = text
        self._update()

    def bundle(self, index: int | None = None) -> ModelBundle:
        """The model at slider position ``index`` (default: the one shown), loaded on first use."""
        index = self.checkpoint if index is None else index
        if index in self._loaded:
            self._loaded.move_to_end(index)
            return self._loaded[index]
        bundle = load_resolved(self._models[index][1])
        self._loaded[index] = bundle
        while len(self._loaded) > LOADED_CHECKPOINTS:
            self._loaded.popitem(last=False)
        return bundle

    @traitlets.observe("text", "checkpoint", "top_k", "show_lens", "lens_kind")
    def _on_change(self, change: dict[str, Any]) -> None:
        self._update()

    def _update(self) -> None:
        from workbench.explain.lens import logit_lens
        from workbench.explain.probe import fill_mask, next_token

        if not self.text.strip():
            with self.hold_sync():
                self.result, self.error = {}, "Type a sentence" + (" with [MASK] in it." if self._is_masked() else ".")
            return
        started = time.perf_counter()
        try:
            bundle = self.bundle()
            if bundle.kind == "masked-lm":
                predictions = [p.to_dict() for p in fill_mask(bundle, self.text, self.top_k).predictions]
            else:
                predictions = [next_token(bundle, self.text, self.top_k).to_dict()]
            tuned, note = self._chosen_lens(bundle)
            lens = _lens_payload(logit_lens(bundle, self.text, top_k=3, lens=tuned)) if self.show_lens else None
        except WorkbenchError as e:
            with self.hold_sync():
                self.error, self.result = str(e), {}
            return
        result = {
            "kind": bundle.kind,
            "model": self.checkpoints[self.checkpoint],
            "text": self.text,
            "predictions": predictions,
            "lens": lens,
            "note": note if self.show_lens else "",
            "ms": round(1000 * (time.perf_counter() - started), 1),
        }
        with self.hold_sync():
            self.error, self.result = "", result

    def _chosen_lens(self, bundle: ModelBundle) -> tuple[TunedLens | None, str]:
        """The tuned lens when the switch asks for it and it fits ``bundle``; else None and, where asked, why not."""
        if self.lens_kind != "tuned":
            return None, ""
        if self._tuned is None:
            return None, "No tuned lens was given (MaskProbe(..., tuned_lens=...)); showing the logit lens."
        problem = self._tuned.mismatch(bundle)
        if problem:
            return None, f"{problem} Showing the logit lens."
        return self._tuned.to(bundle.device), ""  # loaded on the CPU; a no-op once on the model's device

    def _is_masked(self) -> bool:
        model = self._loaded.get(self.checkpoint) or self._models[self.checkpoint][1]
        return getattr(model, "kind", "masked-lm") == "masked-lm"


def _lens_payload(lens: Any) -> dict[str, Any]:
    """The lens as the view draws it: each cell's top token and probability, and the target's probability."""
    return {
        "name": lens.lens,  # "logit lens", or the tuned lens's label
        "layers": lens.layer_names,
        "tokens": lens.tokens.text,
        "special": lens.tokens.special,
        "top": [[cell[0] for cell in row] for row in lens.top_tokens],  # (rows, positions)
        "top_prob": np.round(lens.top_probs[..., 0], 4).tolist(),
        "runners_up": [[cell[1:] for cell in row] for row in lens.top_tokens],  # (rows, positions, k - 1)
        "runner_up_probs": np.round(lens.top_probs[..., 1:], 4).tolist(),
        "target": lens.target_name,
        "target_prob": np.round(lens.target_probs, 4).tolist(),
        "read": lens.read_position,
    }


class ProbeTimeline(anywidget.AnyWidget):
    """Per probe sentence, the expected token's probability and rank over training steps, live."""

    _esm = widget_module("probe_timeline.js")
    _css = widget_css("probe.css")

    records: traitlets.List[dict[str, Any]] = traitlets.List([]).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(self, source: Any, *, title: str = "What the probes predict, step by step", **kwargs: Any):
        from workbench.explain.recorder import ProbeRecorder

        super().__init__(**kwargs)
        self.title = title
        self._recorder = None
        if isinstance(source, ProbeRecorder):
            self._recorder = source
            records = source.timeline
            source.listeners.append(self._on_record)
        elif hasattr(source, "probes") and hasattr(source, "records"):  # a TrainingHistory
            records = source.probes
        elif isinstance(source, (str, os.PathLike)):
            records = _records_from_checkpoint(Path(source))
        elif isinstance(source, Sequence):
            records = [r for r in source if isinstance(r, dict) and r.get("kind") == "probe"]
        else:
            raise TypeError(
                "ProbeTimeline takes a ProbeRecorder (live), a TrainingHistory, a checkpoint or run "
                "folder, or a list of probe records."
            )
        self.records = list(records)

    def _on_record(self, record: dict[str, Any]) -> None:
        # Called from the training thread; widget state set from a thread reaches the browser in JupyterLab.
        self.records = [*self.records, record]

    def close(self) -> None:
        if self._recorder is not None and self._on_record in self._recorder.listeners:
            self._recorder.listeners.remove(self._on_record)
        super().close()


def _records_from_checkpoint(path: Path) -> list[dict[str, Any]]:
    from workbench.training.checkpoint import STATE_FILE, run_checkpoints

    found = [path] if (path / STATE_FILE).exists() else run_checkpoints(path)
    if not found:
        raise FileNotFoundError(f"{path} holds no checkpoint; give a step-NNNNNNN folder or the run's output_dir.")
    saved = json.loads((found[-1] / STATE_FILE).read_text())
    return [r for r in saved.get("history", {}).get("records", []) if r.get("kind") == "probe"]
