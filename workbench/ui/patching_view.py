"""``PatchingView``: the map of a ``PatchingResult`` (patching, attribution patching, causal tracing,
head ablation): layers down, token positions (or heads) across, on a diverging scale centred at zero.

Hover a cell for its site, token and value; the clean and corrupted texts above the map mark the
tokens that differ (or, for causal tracing, the noised subject). On a map of heads, a click opens
that head in an ``AttentionView`` of the clean text below the map, when the view was given the
model (``bundle=``): the attention is computed once, on the first click.

Example::

    from workbench.explain.patching import patch
    from workbench.ui import PatchingView
    result = patch(bundle, "The Eiffel Tower is in", "The Colosseum is in", (" Paris", " Rome"))
    PatchingView(result, bundle)
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from workbench.errors import ProbeError, WorkbenchError
from workbench.explain.attention import AttentionResult, attention
from workbench.explain.patching_result import METHOD_TITLES, PatchingResult
from workbench.explain.sites import Site
from workbench.explain.tokens import TokenInfo
from workbench.models import ModelBundle
from workbench.ui._assets import widget_css, widget_module
from workbench.ui._standalone import standalone_page
from workbench.ui.attention_view import AttentionView

__all__ = ["PatchingView", "pack_values", "unpack_values"]


def pack_values(values: np.ndarray) -> bytes:
    """A (rows, columns) map as little-endian float32, row after row (what the browser reads as a Float32Array)."""
    packed: bytes = np.ascontiguousarray(values, dtype="<f4").tobytes()
    return packed


def unpack_values(raw: bytes, rows: int, columns: int) -> np.ndarray:
    """The inverse of ``pack_values``: a (rows, columns) float32 array."""
    return np.frombuffer(raw, dtype="<f4", count=rows * columns).reshape(rows, columns).copy()


def _number(value: float | None) -> float | None:
    """A float for JSON, or None where it is missing or not finite."""
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def _tokens(info: TokenInfo, marked: list[int]) -> dict[str, Any]:
    """A text's tokens as the view draws them (set with textContent there), with the marked positions."""
    n = len(info.text)
    return {
        "tokens": list(info.text),
        "special": [bool(s) for s in info.special],
        "marked": sorted({int(p) % n for p in marked if -n <= int(p) < n}) if n else [],
    }


def _site_names(result: PatchingResult) -> list[list[str]]:
    """Per layer of the map: one site name for a map of positions, a name per head for a map of heads."""
    if result.by_head:
        return [[Site("head", layer, head).name for head in result.columns] for layer in result.layers]
    kind: Any = result.kind
    return [[Site(kind, layer).name] for layer in result.layers]


def _title(result: PatchingResult) -> str:
    """``Causal tracing of mlp_out: smollm2-135m``; ``Head ablation: tiny-gpt``."""
    method = METHOD_TITLES.get(result.method, result.method)
    if result.method == "ablation":
        return f"{method}: {result.model}"
    return f"{method} of {'each head' if result.by_head else result.kind}: {result.model}"


def result_meta(result: PatchingResult) -> dict[str, Any]:
    """Everything the view draws except the values (which travel as a buffer): tokens as raw text."""
    values = np.asarray(result.values, dtype=np.float32)
    finite = values[np.isfinite(values)]
    extent = float(np.abs(finite).max()) if finite.size else 0.0
    n = len(result.clean_tokens.text)
    corrupted = None  # causal tracing's corrupted run is the clean text with the subject noised: no text of its own
    if result.corrupted_tokens is not None and result.method != "causal_tracing":
        corrupted = {"text": result.corrupted, **_tokens(result.corrupted_tokens, result.differing)}
    clean_marked = result.subject if result.method == "causal_tracing" else result.differing
    return {
        "title": _title(result),
        "model": result.model,
        "method": result.method,
        "kind": result.kind,
        "by_head": result.by_head,
        "rows": len(result.layers),
        "columns": len(result.columns),
        "layers": [int(v) for v in result.layers],
        "row_labels": ["embed"] if result.of_embeddings else [f"L{int(v)}" for v in result.layers],
        "column_ids": [int(v) for v in result.columns],
        "site_names": _site_names(result),
        "extent": extent if extent > 0 else 1.0,
        "metric": result.metric,
        "clean_metric": _number(result.clean_metric),
        "corrupted_metric": _number(result.corrupted_metric),
        "direction": result.direction,
        "read_position": result.read_position % n if n and -n <= result.read_position < n else None,
        "samples": result.samples,
        "pearson_r": _number(result.pearson_r),
        "note": result.note,
        "clean": {"text": result.clean, **_tokens(result.clean_tokens, clean_marked)},
        "corrupted": corrupted,
        "can_open": False,  # set by the view: a click on a head opens it only with a model at hand
        "standalone": False,
    }


class PatchingView(anywidget.AnyWidget):
    """A layers x positions (or layers x heads) map of a ``PatchingResult``; hover for values, click a head.

    ``bundle`` is the model the result was made with: with it, a click on a head opens that head in an
    ``AttentionView`` of the clean text (``view.attention``); without it, the click says to pass ``bundle=``.
    Raises ``TypeError`` for anything but a ``PatchingResult`` (or a bundle that is not a ``ModelBundle``),
    and ``ProbeError`` for a bundle of another model than the result's.
    """

    _esm = widget_module("patching.js")
    _css = widget_css("patching.css")

    meta = traitlets.Dict({}).tag(sync=True)
    values = traitlets.Bytes(b"").tag(sync=True)  # pack_values(result.values): (rows, columns) float32
    message = traitlets.Unicode("").tag(sync=True)  # the answer to the last click, one sentence
    opened = traitlets.Dict({}).tag(sync=True)  # {layer, head} of the head shown below, {} before any
    attention = anywidget.WidgetTrait().tag(sync=True)  # the AttentionView shown below the map, once opened

    def __init__(self, result: PatchingResult, bundle: ModelBundle | None = None, **kwargs: Any):
        if not isinstance(result, PatchingResult):
            raise TypeError(
                "PatchingView takes a PatchingResult (from workbench.explain patch, attribution_patching "
                f"or ablate_each_head), got {type(result).__name__}."
            )
        if bundle is not None and not isinstance(bundle, ModelBundle):
            raise TypeError(
                f"PatchingView takes the ModelBundle the result was made with as bundle=, got {type(bundle).__name__}."
            )
        if bundle is not None and bundle.name != result.model:
            raise ProbeError(
                f"This map is of {result.model} but bundle= is {bundle.name}; pass the model the map was made with."
            )
        shape = np.shape(result.values)
        if shape != (len(result.layers), len(result.columns)):
            raise ValueError(
                f"The result's values are {shape} but it names {len(result.layers)} layers and "
                f"{len(result.columns)} columns; build it with values of shape (layers, columns)."
            )
        super().__init__(**kwargs)
        self.result = result
        self.bundle = bundle
        self._attention_result: AttentionResult | None = None
        self.on_msg(self._on_message)
        with self.hold_sync():
            self.meta = {**result_meta(result), "can_open": bundle is not None and result.by_head}
            self.values = pack_values(result.values)

    def _on_message(self, widget: Any, content: Any, buffers: Any) -> None:
        """The browser's click on a head: ``{"open": "head", "layer": l, "head": h}``; anything else is ignored."""
        if not isinstance(content, dict) or content.get("open") != "head":
            return
        self.open_head(content.get("layer"), content.get("head"))

    def open_head(self, layer: Any, head: Any) -> None:
        """Show head ``head`` of layer ``layer`` below the map in the attention view of the clean text.

        Says why not in ``message`` (in the view) on a map of positions, without ``bundle=``, for a
        head the map does not hold, or when the attention cannot be computed (e.g. over the memory budget).
        """
        r = self.result
        if not r.by_head:
            self.message = "Only a map of heads opens a head; this map is of token positions."
            return
        if not (
            all(isinstance(v, int) and not isinstance(v, bool) for v in (layer, head))
            and layer in r.layers
            and head in r.columns
        ):
            self.message = f"Layer {layer!r}, head {head!r} is not in this map."
            return
        if self.bundle is None:
            self.message = (
                f"To open head {layer}.{head} in the attention view, pass the model: PatchingView(result, bundle=...)."
            )
            return
        try:
            if self._attention_result is None:
                self._attention_result = attention(self.bundle, r.clean)  # once: every head of the clean text
            if self.attention is None:
                self.attention = AttentionView(self._attention_result, layer=layer, head=head, mode="head")
            else:
                with self.attention.hold_sync():
                    self.attention.mode = "head"
                    self.attention.selected = {"layer": layer, "head": head}
        except WorkbenchError as error:
            self.message = str(error)
            return
        with self.hold_sync():
            self.opened = {"layer": layer, "head": head}
            self.message = f"Head {layer}.{head} on the clean text, below."

    def to_html(self, path: str | Path | None = None, *, memory_mb: int | None = None) -> str:
        """One standalone HTML file that opens offline with no kernel; returns it (and writes it to ``path``).

        Hover works there; opening a head needs the kernel. Raises ``MemoryBudgetError`` when the page
        would not fit ``memory_mb`` (default: the kernel's budget).
        """
        state = {
            "meta": {**self.meta, "can_open": False, "standalone": True},
            "message": "",
            "opened": {},
            "attention": None,
        }
        binary = {"values": base64.b64encode(self.values).decode()}
        return standalone_page(self.meta["title"], "patching", state, binary=binary, path=path, memory_mb=memory_mb)
