"""``AttentionView``: explore every head of an ``AttentionResult``, offline, at real lengths.

Only what is on screen travels. Tokens and statistics go as JSON and every head as a low-resolution
8-bit thumbnail. A short text (up to ``FULL_HEAD_TOKENS``) sends the opened head in full (8-bit,
scaled per row). A long one sends only what the browser asks for: the rows of the opened head that
are in sight (``window``), its map pooled to at most 256 blocks a side, and a region of it at full
resolution when the user zooms (``zoom``). At 4,096 tokens the first render is under 1 MB.

Example::

    from workbench.explain import attention
    from workbench.ui import AttentionView
    AttentionView(attention(bundle, "The cat sat on the mat."))
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from workbench.explain.attention import (
    STATISTICS,
    THUMB,
    AttentionResult,
    attention_flow,
    attention_rollout,
    pool_maps,
)
from workbench.explain.budget import require
from workbench.ui._assets import widget_css, widget_module
from workbench.ui._standalone import standalone_page

__all__ = ["AttentionView", "pack_matrix", "thumbnails", "unpack_matrix"]

FLOW_MAX_TOKENS = 32  # attention flow is computed up front only for inputs this short
FULL_HEAD_TOKENS = 512  # up to this length a head travels whole (n*n bytes); above it, a window of rows
WINDOW_ROWS = 64  # query rows of the first window, and what the browser asks for as it scrolls
MAX_WINDOW_ROWS = 256  # the most rows one window request is answered with
ZOOM_CELLS = 256  # a zoomed region is at most this many queries and keys a side
EXPORT_BYTES_PER_CELL = 8  # a head's map in a page: float32 rows, 8-bit copy, base64 and the page's copies


def pack_matrix(weights: np.ndarray) -> bytes:
    """A (rows, cols) matrix as rows float32 row maxima followed by rows*cols uint8 (value / row max * 255)."""
    w = np.asarray(weights, dtype=np.float32)
    scale = w.max(axis=1)
    safe = np.where(scale > 0, scale, 1.0)
    q = np.rint(w / safe[:, None] * 255).astype(np.uint8)
    packed: bytes = scale.astype("<f4").tobytes() + q.tobytes()
    return packed


def unpack_matrix(raw: bytes, rows: int, cols: int | None = None) -> np.ndarray:
    """The inverse of ``pack_matrix`` (within 1/255 of each row's maximum); square when ``cols`` is not given."""
    cols = rows if cols is None else cols
    scale = np.frombuffer(raw[: 4 * rows], dtype="<f4")
    q = np.frombuffer(raw[4 * rows : 4 * rows + rows * cols], dtype=np.uint8).reshape(rows, cols)
    matrix: np.ndarray = q.astype(np.float32) / 255 * scale[:, None]
    return matrix


def thumbnails(result: AttentionResult, size: int = THUMB) -> tuple[bytes, int]:
    """Every head pooled to (t, t), t = min(blocks, size), each scaled to its own maximum; (bytes, t)."""
    cells = result.thumbnails(size)  # (layers, heads, t, t), from the pooled maps at any length
    peak = cells.max(axis=(2, 3), keepdims=True)
    q = np.rint(cells / np.where(peak > 0, peak, 1) * 255).astype(np.uint8)
    return q.tobytes(), int(cells.shape[-1])


def _span(start: Any, stop: Any, n: int, most: int) -> tuple[int, int] | None:
    """``[start, stop)`` clamped to ``[0, n)`` and to at most ``most`` long (kept around its middle); None if empty."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, stop)):
        return None
    lo, hi = max(0, int(start)), min(n, int(stop))
    if hi - lo > most:
        lo = (lo + hi - most) // 2
        hi = lo + most
    return (lo, hi) if lo < hi else None


class AttentionView(anywidget.AnyWidget):
    """Head view, model view (layers x heads thumbnails), matrix, head-statistics map and rollout.

    Long texts (over ``FULL_HEAD_TOKENS``): the head view draws only the rows in sight and the kernel
    sends their attention as the user scrolls; the matrix is pooled, with zoom into a region at full
    resolution; rollout is between blocks of ``result.block_size`` tokens.
    """

    _esm = widget_module("attention.js")
    _css = widget_css("attention.css")

    meta = traitlets.Dict({}).tag(sync=True)
    mode = traitlets.Unicode("head").tag(sync=True)
    selected = traitlets.Dict({"layer": 0, "head": 0}).tag(sync=True)
    head_key = traitlets.Unicode("").tag(sync=True)
    head_data = traitlets.Bytes(b"").tag(sync=True)  # short texts: the opened head, whole
    window = traitlets.Dict({}).tag(sync=True)  # long texts, set by the browser: {layer, head, start, stop}
    window_shown = traitlets.Dict({}).tag(sync=True)  # the rows window_data holds: {layer, head, start, stop}
    window_data = traitlets.Bytes(b"").tag(sync=True)  # pack_matrix of those rows over every key
    zoom = traitlets.Dict({}).tag(sync=True)  # set by the browser: {layer, head, q0, q1, k0, k1}; {} = whole head
    zoom_shown = traitlets.Dict({}).tag(sync=True)  # the region zoom_data holds
    zoom_data = traitlets.Bytes(b"").tag(sync=True)
    pooled_key = traitlets.Unicode("").tag(sync=True)
    pooled_data = traitlets.Bytes(b"").tag(sync=True)  # long texts: the opened head pooled, blocks x blocks
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
        self.long = n > FULL_HEAD_TOKENS
        flow = attention_flow(result) if n <= FLOW_MAX_TOKENS else None
        rollout = attention_rollout(result)[-1]  # (n, n) when exact, (blocks, blocks) from the pooled maps
        rollout_block = 1 if rollout.shape[-1] == n else result.block_size
        if self.long and rollout_block == 1:  # exact, but too large to send: pooled like the matrix
            rollout, rollout_block = pool_maps(rollout[None, None], result.block_size)[0, 0], result.block_size
        thumbs, t = thumbnails(result)
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
                "long": self.long,
                "block_size": result.block_size,
                "blocks": int(self.result.pooled.shape[-1]),
                "rollout_size": int(rollout.shape[-1]),
                "rollout_block": rollout_block,
                "window_rows": WINDOW_ROWS,
                "max_window_rows": MAX_WINDOW_ROWS,
                "zoom_cells": ZOOM_CELLS,
                "embedded": None,  # a standalone page lists the heads it holds in full
            }
            self.thumbs = thumbs
            self.rollout_data = pack_matrix(rollout)
            self.flow_data = pack_matrix(flow) if flow is not None else b""
            self.mode = mode
            self.selected = {"layer": int(layer), "head": int(head)}
            self._send_head()
            if self.long:
                self.window = {"layer": int(layer), "head": int(head), "start": 0, "stop": min(n, WINDOW_ROWS)}

    def _selected(self) -> tuple[int, int] | None:
        return self._head_of(dict(self.selected))

    def _head_of(self, request: dict[str, Any]) -> tuple[int, int] | None:
        """The (layer, head) a request or selection names, or None when it names no head of the result."""
        layer, head = request.get("layer"), request.get("head")
        if not (isinstance(layer, int) and isinstance(head, int) and not isinstance(layer, bool)):
            return None
        if not (0 <= layer < self.result.num_layers and 0 <= head < self.result.num_heads):
            return None
        return layer, head

    @traitlets.observe("selected")
    def _on_selected(self, change: dict[str, Any]) -> None:
        self._send_head()
        if self.long and self.window:
            self._send_window({**self.window, **self.selected})

    @traitlets.observe("window")
    def _on_window(self, change: dict[str, Any]) -> None:
        self._send_window(change["new"])

    @traitlets.observe("zoom")
    def _on_zoom(self, change: dict[str, Any]) -> None:
        self._send_zoom(change["new"])

    def _send_head(self) -> None:
        """The opened head: whole for a short text, pooled for a long one (its rows come by window)."""
        chosen = self._selected()
        if chosen is None:
            return
        layer, head = chosen
        with self.hold_sync():
            if self.long:
                self.pooled_data = pack_matrix(self.result.pooled[layer, head])
                self.pooled_key = f"{layer}:{head}"
            else:
                self.head_data = pack_matrix(self.result.rows(layer, head))
                self.head_key = f"{layer}:{head}"

    def _send_window(self, request: dict[str, Any]) -> None:
        """Answer a window request with those rows of the head over every key; a malformed one is ignored."""
        chosen = self._head_of(request)
        span = _span(request.get("start"), request.get("stop"), self.result.num_tokens, MAX_WINDOW_ROWS)
        if chosen is None or span is None:
            return
        (layer, head), (start, stop) = chosen, span
        rows = self.result.rows(layer, head, start, stop)  # (stop - start, n)
        with self.hold_sync():
            self.window_data = pack_matrix(rows)
            self.window_shown = {"layer": layer, "head": head, "start": start, "stop": stop}

    def _send_zoom(self, request: dict[str, Any]) -> None:
        """Answer a zoom request with that region of the head at full resolution, at most ZOOM_CELLS a side."""
        n = self.result.num_tokens
        chosen = self._head_of(request)
        queries = _span(request.get("q0"), request.get("q1"), n, ZOOM_CELLS)
        keys = _span(request.get("k0"), request.get("k1"), n, ZOOM_CELLS)
        if chosen is None or queries is None or keys is None:
            return
        (layer, head), (q0, q1), (k0, k1) = chosen, queries, keys
        region = self.result.region(layer, head, (q0, q1), (k0, k1))  # (q1 - q0, k1 - k0)
        with self.hold_sync():
            self.zoom_data = pack_matrix(region)
            self.zoom_shown = {"layer": layer, "head": head, "q0": q0, "q1": q1, "k0": k0, "k1": k1}

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

    def to_html(
        self,
        path: str | Path | None = None,
        *,
        heads: Sequence[tuple[int, int]] | None = None,
        memory_mb: int | None = None,
    ) -> str:
        """One standalone HTML file that opens offline, with no kernel; returns it (written to ``path`` when given).

        Every head's thumbnail and pooled map travel; ``heads`` (a list of ``(layer, head)``) chooses
        which travel in full, so that their rows and zoomed regions open offline (default: every head
        of a short text, the opened head of a long one). Raises ``MemoryBudgetError`` before building
        when those heads do not fit ``memory_mb`` (default: the kernel's budget), and ``ValueError``
        for a head that does not exist. Example: ``view.to_html("a.html", heads=[(3, 1), (5, 0)])``.
        """
        r = self.result
        chosen = self._export_heads(heads)
        n, blocks = r.num_tokens, self.result.pooled.shape[-1]
        pooled_bytes = r.num_layers * r.num_heads * blocks * blocks if self.long else 0
        require(
            len(chosen) * n * n * EXPORT_BYTES_PER_CELL + pooled_bytes * EXPORT_BYTES_PER_CELL,
            memory_mb,
            f"the standalone page with {len(chosen)} of {r.num_layers * r.num_heads} heads in full at {n:,} tokens",
            "heads=[(layer, head), ...] naming fewer heads (every head's thumbnail and pooled map travel anyway)",
        )
        full = {f"{layer}:{h}": base64.b64encode(pack_matrix(r.rows(layer, h))).decode() for layer, h in chosen}
        pooled = {}
        if self.long:
            pooled = {
                f"{layer}:{h}": base64.b64encode(pack_matrix(self.result.pooled[layer, h])).decode()
                for layer in range(r.num_layers)
                for h in range(r.num_heads)
            }
        state = {
            "meta": {**self.meta, "embedded": sorted(full)},
            "mode": self.mode,
            "selected": self.selected,
            "stat": self.stat,
            "hide_special": self.hide_special,
            "head_key": "",
            "head_data": "",
            "window": {},
            "window_shown": {},
            "zoom": {},
            "zoom_shown": {},
            "pooled_key": "",
        }
        binary = {
            "thumbs": base64.b64encode(self.thumbs).decode(),
            "rollout_data": base64.b64encode(self.rollout_data).decode(),
            "flow_data": base64.b64encode(self.flow_data).decode(),
        }
        return standalone_page(
            f"Attention: {r.model}",
            "attention",
            state,
            binary=binary,
            extra={"heads": full, "pooled": pooled},
            on_set="answer(k, v);",
            before_render=_ANSWER_OFFLINE + 'model.set("selected", state.selected);',
            path=path,
            memory_mb=memory_mb,
        )

    def _export_heads(self, heads: Sequence[tuple[int, int]] | None) -> list[tuple[int, int]]:
        r = self.result
        if heads is None:
            if self.long:
                chosen = self._selected()
                return [chosen] if chosen is not None else []
            return [(layer, h) for layer in range(r.num_layers) for h in range(r.num_heads)]
        out = []
        for item in heads:
            pair = tuple(item) if isinstance(item, (tuple, list)) else ()
            if not (
                len(pair) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
                and 0 <= pair[0] < r.num_layers
                and 0 <= pair[1] < r.num_heads
            ):
                raise ValueError(
                    f"heads must list (layer, head) pairs with layer below {r.num_layers} and head below "
                    f"{r.num_heads}, got {item!r}."
                )
            out.append((int(pair[0]), int(pair[1])))
        return sorted(set(out))


# In the standalone page, what the kernel would answer comes from the heads the page holds: the opened
# head (whole, or pooled), and windows and zoomed regions cut from a head held in full.
_ANSWER_OFFLINE = """
const unpacked = {};
const full = (key) => heads[key] ? (unpacked[key] = unpacked[key] || decode(heads[key])) : null;
const answer = (k, v) => {
  const n = state.meta.n;
  if (k === "selected") {
    const key = `${v.layer}:${v.head}`;
    if (state.meta.long && pooled[key]) { state.pooled_data = decode(pooled[key]); state.pooled_key = key;
      fire("pooled_data"); fire("pooled_key"); }
    if (!state.meta.long && heads[key]) { state.head_data = full(key); state.head_key = key;
      fire("head_data"); fire("head_key"); }
    return;
  }
  const packed = v && full(`${v.layer}:${v.head}`);
  if (!packed) return;
  const cut = (r0, r1, c0, c1) => {
    const rows = r1 - r0, cols = c1 - c0, out = new Uint8Array(4 * rows + rows * cols);
    out.set(packed.subarray(4 * r0, 4 * r1), 0);
    for (let r = 0; r < rows; r++)
      out.set(packed.subarray(4 * n + (r0 + r) * n + c0, 4 * n + (r0 + r) * n + c1), 4 * rows + r * cols);
    return out;
  };
  if (k === "window") {
    state.window_data = cut(v.start, v.stop, 0, n);
    state.window_shown = { layer: v.layer, head: v.head, start: v.start, stop: v.stop };
    fire("window_data"); fire("window_shown");
  } else if (k === "zoom" && v.q1 !== undefined) {
    state.zoom_data = cut(v.q0, v.q1, v.k0, v.k1);
    state.zoom_shown = { ...v };
    fire("zoom_data"); fire("zoom_shown");
  }
};
"""
