"""``AttentionView``: explore every head of an ``AttentionResult``, offline, at real lengths.

Only what is on screen travels: tokens and statistics as JSON, all heads as low-resolution
8-bit thumbnails, and one head in full (8-bit, scaled per row) when it is opened.

Example::

    from workbench.explain import attention
    from workbench.ui import AttentionView
    AttentionView(attention(bundle, "The cat sat on the mat."))
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from workbench.explain.attention import STATISTICS, AttentionResult, attention_flow, attention_rollout
from workbench.ui._assets import widget_css, widget_module
from workbench.ui._standalone import standalone_page

__all__ = ["AttentionView", "pack_matrix", "thumbnails"]

THUMB = 24  # thumbnails are at most THUMB x THUMB cells
FLOW_MAX_TOKENS = 32  # attention flow is computed up front only for inputs this short


def pack_matrix(weights: np.ndarray) -> bytes:
    """An (n, n) matrix as n float32 row maxima followed by n*n uint8 (value / row max * 255)."""
    w = np.asarray(weights, dtype=np.float32)
    scale = w.max(axis=1)
    safe = np.where(scale > 0, scale, 1.0)
    q = np.rint(w / safe[:, None] * 255).astype(np.uint8)
    packed: bytes = scale.astype("<f4").tobytes() + q.tobytes()
    return packed


def unpack_matrix(raw: bytes, n: int) -> np.ndarray:
    """The inverse of ``pack_matrix`` (within 1/255 of each row's maximum)."""
    scale = np.frombuffer(raw[: 4 * n], dtype="<f4")
    q = np.frombuffer(raw[4 * n : 4 * n + n * n], dtype=np.uint8).reshape(n, n)
    matrix: np.ndarray = q.astype(np.float32) / 255 * scale[:, None]
    return matrix


def thumbnails(weights: np.ndarray, size: int = THUMB) -> tuple[bytes, int]:
    """Every head average-pooled to (t, t), t = min(n, size), each scaled to its own maximum; (bytes, t)."""
    n = weights.shape[2]  # weights: (layers, heads, query, key)
    t = min(n, size)
    edges = np.linspace(0, n, t + 1).astype(int)[:-1]
    pooled = np.add.reduceat(np.add.reduceat(weights, edges, axis=2), edges, axis=3)  # (layers, heads, t, t)
    counts = np.diff(np.append(edges, n))
    pooled = pooled / counts[:, None] / counts[None, :]
    peak = pooled.max(axis=(2, 3), keepdims=True)
    q = np.rint(pooled / np.where(peak > 0, peak, 1) * 255).astype(np.uint8)
    return q.tobytes(), t


class AttentionView(anywidget.AnyWidget):
    """Head view, model view (layers x heads thumbnails), matrix, head-statistics map and rollout."""

    _esm = widget_module("attention.js")
    _css = widget_css("attention.css")

    meta = traitlets.Dict({}).tag(sync=True)
    mode = traitlets.Unicode("head").tag(sync=True)
    selected = traitlets.Dict({"layer": 0, "head": 0}).tag(sync=True)
    head_key = traitlets.Unicode("").tag(sync=True)
    head_data = traitlets.Bytes(b"").tag(sync=True)
    thumbs = traitlets.Bytes(b"").tag(sync=True)
    rollout_data = traitlets.Bytes(b"").tag(sync=True)
    flow_data = traitlets.Bytes(b"").tag(sync=True)
    stat = traitlets.Unicode("entropy").tag(sync=True)
    hide_special = traitlets.Bool(False).tag(sync=True)

    def __init__(self, result: AttentionResult, *, layer: int = 0, head: int = 0, mode: str = "head", **kwargs: Any):
        if not isinstance(result, AttentionResult):
            raise TypeError(
                f"AttentionView takes an AttentionResult (from workbench.explain.attention), "
                f"got {type(result).__name__}."
            )
        super().__init__(**kwargs)
        self.result = result
        n = result.num_tokens
        flow = attention_flow(result) if n <= FLOW_MAX_TOKENS else None
        thumbs, t = thumbnails(result.weights)
        with self.hold_sync():
            self.meta = {
                "model": result.model,
                "n": n,
                "layers": result.num_layers,
                "heads": result.num_heads,
                "tokens": result.tokens.to_dict(),
                "causal": result.causal,
                "note": result.note,
                "stats": {k: np.round(v, 4).tolist() for k, v in result.stats.items()},
                "stat_names": [s for s in STATISTICS if s in result.stats],
                "thumb": t,
                "has_flow": flow is not None,
            }
            self.thumbs = thumbs
            self.rollout_data = pack_matrix(attention_rollout(result)[-1])
            self.flow_data = pack_matrix(flow) if flow is not None else b""
            self.mode = mode
            self.selected = {"layer": int(layer), "head": int(head)}
            self._send_head()

    @traitlets.observe("selected")
    def _on_selected(self, change: dict[str, Any]) -> None:
        self._send_head()

    def _send_head(self) -> None:
        layer = int(self.selected.get("layer", 0))
        head = int(self.selected.get("head", 0))
        if not (0 <= layer < self.result.num_layers and 0 <= head < self.result.num_heads):
            return
        with self.hold_sync():
            self.head_data = pack_matrix(self.result.weights[layer, head])
            self.head_key = f"{layer}:{head}"

    def first_render_bytes(self) -> int:
        """Bytes the browser receives to draw the view the first time: JSON state plus binary buffers."""
        state = self.get_state()
        size = 0
        for key, value in state.items():
            if isinstance(value, (bytes, memoryview)):
                size += len(value)
            elif key not in ("_esm", "_css"):
                size += len(json.dumps(value, default=str))
        return size

    def to_html(self, path: str | Path | None = None) -> str:
        """One standalone HTML file (every head embedded) that opens offline, with no kernel; returns it.

        Written to ``path`` when given.
        """
        r = self.result
        heads = {
            f"{layer}:{h}": base64.b64encode(pack_matrix(r.weights[layer, h])).decode()
            for layer in range(r.num_layers)
            for h in range(r.num_heads)
        }
        state = {
            "meta": self.meta,
            "mode": self.mode,
            "selected": self.selected,
            "stat": self.stat,
            "hide_special": self.hide_special,
            "head_key": "",
            "head_data": "",
        }
        binary = {
            "thumbs": base64.b64encode(self.thumbs).decode(),
            "rollout_data": base64.b64encode(self.rollout_data).decode(),
            "flow_data": base64.b64encode(self.flow_data).decode(),
        }
        # Every head is in the page; selecting one hands its matrix over as the kernel would.
        on_set = (
            'if (k === "selected") { const key = `${v.layer}:${v.head}`; state.head_data = decode(heads[key]); '
            'state.head_key = key; fire("head_data"); fire("head_key"); }'
        )
        return standalone_page(
            f"Attention: {r.model}",
            "attention",
            state,
            binary=binary,
            extra={"heads": heads},
            on_set=on_set,
            before_render='model.set("selected", state.selected);',
            path=path,
        )
