"""Attention weights of every head of every layer, with per-head statistics, rollout and flow.

Example::

    from workbench.explain import attention, attention_rollout
    result = attention(load_model("minilm"), "The cat sat on the mat.")
    result.weights.shape          # (layers, heads, query, key)
    result.stats["entropy"]       # (layers, heads)
    rollout = attention_rollout(result)   # (layers, query, key)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from workbench.errors import ProbeError
from workbench.explain.attention_maps import AttentionMaps, ScanPlan, capture, induction_mask, pooled_bins
from workbench.explain.budget import budget_bytes, require
from workbench.explain.footprint import ModelShape
from workbench.explain.inputs import accepts_argument, check_text, inference
from workbench.explain.tokens import TokenInfo, token_info
from workbench.models import attention_lock, eager_attention

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = [
    "STATISTICS",
    "AttentionResult",
    "attention",
    "attention_flow",
    "attention_rollout",
    "head_statistics",
    "pool_maps",
    "shrink_pooled",
]

STATISTICS = ("entropy", "mean_distance", "special", "punctuation", "previous", "next", "self", "induction")
THUMB = 24  # thumbnails are at most THUMB x THUMB cells


@dataclass
class AttentionResult:
    """Attention of one input: tokens, per-head statistics, pooled maps, and every head's map on demand.

    Which to use: ``weights`` ``(layers, heads, query, key)`` holds every map at once and is kept only
    for texts short enough to fit the memory budget (a quarter of it). At any length,
    ``head(layer, head)`` gives one head's map, ``rows(...)``/``row(...)`` some of its rows,
    ``region(...)`` a window of it at full resolution, and ``thumbnail(...)``/``pooled`` the maps
    pooled over blocks of ``block_size`` tokens; ``stats`` are exact at every length.
    """

    model: str
    text: str
    pair: str | None
    tokens: TokenInfo
    full_weights: np.ndarray | None  # (layers, heads, query, key), float32, rows sum to 1; None for long texts
    stats: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (layers, heads)
    causal: bool = False
    truncated: bool = False
    note: str = ""
    pooled: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0, 0), np.float32))
    # ^ (layers, heads, blocks, blocks): rows sum to 1 over key blocks; pooled from full_weights when not given
    block_size: int = 0  # tokens per block of ``pooled``
    maps: AttentionMaps | None = field(default=None, repr=False, compare=False)  # every head, recomputed on demand

    def __post_init__(self) -> None:
        if not self.pooled.size:
            if self.full_weights is None:
                raise ValueError("An AttentionResult needs its full weights or its pooled maps.")
            self.block_size = pooled_bins(self.full_weights.shape[2])
            self.pooled = pool_maps(self.full_weights, self.block_size)

    @property
    def num_layers(self) -> int:
        return int(self.pooled.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.pooled.shape[1])

    @property
    def num_tokens(self) -> int:
        return len(self.tokens.text)

    @property
    def weights(self) -> np.ndarray:
        """Every head's map, ``(layers, heads, query, key)``; kept for short texts only (see the class docstring)."""
        if self.full_weights is None:
            n = self.num_tokens
            size = self.num_layers * self.num_heads * n * n * 4
            raise ProbeError(
                f"This result of {n:,} tokens keeps no full weights ({self.num_layers} × {self.num_heads} maps of "
                f"{n:,} × {n:,} would take {size / 2**20:,.0f} MB): read one head with result.head(layer, head), "
                "some rows with result.rows(layer, head, start, stop), a window with result.region(...), "
                "or the pooled maps with result.thumbnail(layer, head)."
            )
        return self.full_weights

    def _check(self, layer: int, head: int) -> None:
        if not (isinstance(layer, (int, np.integer)) and -self.num_layers <= layer < self.num_layers):
            raise ProbeError(f"layer must be an index below {self.num_layers}, got {layer!r}.")
        if not (isinstance(head, (int, np.integer)) and -self.num_heads <= head < self.num_heads):
            raise ProbeError(f"head must be an index below {self.num_heads}, got {head!r}.")

    def rows(self, layer: int, head: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` (queries) of one head's map over every key: ``(stop - start, n)`` float32.

        Raises ``ProbeError`` for a layer, head or span out of range."""
        self._check(layer, head)
        n = self.num_tokens
        stop = n if stop is None else stop
        if not (0 <= start < stop <= n):
            raise ProbeError(f"start and stop must satisfy 0 <= start < stop <= {n}, got {start} and {stop}.")
        layer, head = int(layer) % self.num_layers, int(head) % self.num_heads
        if self.full_weights is not None:
            rows: np.ndarray = self.full_weights[layer, head, start:stop]
            return rows
        assert self.maps is not None  # a result without full weights always has its maps
        return self.maps.rows(layer, head, start, stop)

    def row(self, layer: int, head: int, query: int) -> np.ndarray:
        """Where one query attends: one row of a head's map, ``(n,)``; ``ProbeError`` out of range."""
        one: np.ndarray = self.rows(layer, head, query, query + 1)[0]
        return one

    def head(self, layer: int, head: int, *, memory_mb: int | None = None) -> np.ndarray:
        """One head's full map ``(query, key)``; ``MemoryBudgetError`` when n × n floats do not fit the budget."""
        n = self.num_tokens
        require(
            12 * n * n,  # the scores, the mask, the probabilities and the copy returned
            memory_mb,
            f"one head's full map of {n:,} tokens",
            "result.rows(...) or result.region(...) for part of it",
        )
        return self.rows(layer, head)

    def region(self, layer: int, head: int, queries: tuple[int, int], keys: tuple[int, int]) -> np.ndarray:
        """A window of one head's map at full resolution: queries ``[q0, q1)`` × keys ``[k0, k1)``,
        ``(q1 - q0, k1 - k0)``; ``ProbeError`` for a window out of range."""
        (q0, q1), (k0, k1) = queries, keys
        if not (0 <= k0 < k1 <= self.num_tokens):
            raise ProbeError(f"keys must satisfy 0 <= k0 < k1 <= {self.num_tokens}, got {keys}.")
        return self.rows(layer, head, q0, q1)[:, k0:k1]

    def thumbnail(self, layer: int, head: int, size: int = THUMB) -> np.ndarray:
        """One head's map pooled to at most ``size`` × ``size`` cells: the mean attention per cell ``(t, t)``;
        ``ProbeError`` for a layer or head out of range."""
        self._check(layer, head)
        one: np.ndarray = self.thumbnails(size)[int(layer), int(head)]
        return one

    def thumbnails(self, size: int = THUMB) -> np.ndarray:
        """Every head pooled to ``(layers, heads, t, t)``, t = min(n, size): the mean attention per cell."""
        if not isinstance(size, int) or size < 1:
            raise ProbeError(f"size must be a positive number of cells, got {size!r}.")
        return shrink_pooled(self.pooled, self.block_size, self.num_tokens, size)

    def to_dict(self, include_weights: bool = False) -> dict[str, Any]:
        """Tokens, shape, statistics and note; the weights too when asked (they can be large)."""
        d = {
            "model": self.model,
            "text": self.text,
            "pair": self.pair,
            "tokens": self.tokens.to_dict(),
            "shape": [self.num_layers, self.num_heads, self.num_tokens, self.num_tokens],
            "stats": {k: v.tolist() for k, v in self.stats.items()},
            "causal": self.causal,
            "truncated": self.truncated,
            "note": self.note,
            "block_size": self.block_size,
        }
        if include_weights:
            d["weights"] = self.weights.tolist()
        return d

    def __repr__(self) -> str:
        return (
            f"AttentionResult({self.model}, {self.num_tokens} tokens, {self.num_layers} layers x "
            f"{self.num_heads} heads{', truncated' if self.truncated else ''})"
        )


def pool_maps(weights: np.ndarray, size: int) -> np.ndarray:
    """Full maps ``(layers, heads, n, n)`` pooled over blocks of ``size`` tokens: the mean over a block's
    queries of the attention summed over a key block, ``(layers, heads, blocks, blocks)``."""
    n = weights.shape[-1]
    if size == 1:  # blocks of one token: the maps themselves
        same: np.ndarray = weights.astype(np.float32, copy=False)
        return same
    edges = np.arange(0, n, size)
    summed = np.add.reduceat(np.add.reduceat(weights, edges, axis=-1), edges, axis=-2)
    counts = np.diff(np.append(edges, n))
    pooled: np.ndarray = (summed / counts[:, None]).astype(np.float32)
    return pooled


def shrink_pooled(pooled: np.ndarray, block_size: int, n: int, size: int) -> np.ndarray:
    """Pooled maps (blocks of ``block_size`` tokens) further pooled to at most ``size`` cells a side, as the
    mean attention per token pair in each cell: ``(layers, heads, t, t)``, t = min(n, size)."""
    blocks = pooled.shape[-1]
    tokens_per_block = np.full(blocks, block_size, dtype=np.float64)
    tokens_per_block[-1] = n - (blocks - 1) * block_size
    t = min(blocks, size)
    edges = np.linspace(0, blocks, t + 1).astype(int)[:-1]
    queries = np.add.reduceat(tokens_per_block, edges)  # tokens per cell
    rows_weighted = pooled.astype(np.float64) * tokens_per_block[:, None]  # back to sums over the block's queries
    summed = np.add.reduceat(np.add.reduceat(rows_weighted, edges, axis=-1), edges, axis=-2)
    cells: np.ndarray = (summed / queries[:, None] / queries[None, :]).astype(np.float32)
    return cells


def attention(
    bundle: ModelBundle,
    text: str,
    pair: str | None = None,
    *,
    max_tokens: int | None = None,
    memory_mb: int | None = None,
    keep_weights: bool | None = None,
) -> AttentionResult:
    """Run the model once and return every head's statistics, pooled maps, and maps on demand.

    The forward uses the model's own fast kernel while each layer's queries and keys are captured
    (see ``attention_maps``); statistics are computed from them exactly, block by block, within
    ``memory_mb`` (default: the kernel's budget, ``set_memory_budget``). ``result.weights`` holds
    every full map when they fit a quarter of the budget (``keep_weights`` forces it either way);
    otherwise read heads, rows and regions through the result (see ``AttentionResult``).
    Text longer than the model's positions (or ``max_tokens``) is truncated, and ``note`` says so.
    Raises ``ProbeError`` for empty or non-string text, and ``MemoryBudgetError`` (before
    allocating) when the call cannot fit its budget. bertviz's views: ``workbench.ui.to_bertviz(result)``.
    """
    text = check_text(text)
    if pair is not None:
        pair = check_text(pair)
    limit = min(bundle.max_positions, max_tokens) if max_tokens else bundle.max_positions
    tok = bundle.tokenizer
    args = (text,) if pair is None else (text, pair)
    full_length = len(tok(*args, add_special_tokens=True, verbose=False)["input_ids"])
    enc = tok(
        *args,
        truncation=True,
        max_length=limit,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        verbose=False,
    )
    truncated = full_length > limit
    note = (
        f"The text is {full_length} tokens; {bundle.name} takes {limit}, so only the first {limit} are shown."
        if truncated
        else ""
    )
    info = token_info(tok, enc, text, pair)
    if "token_type_ids" in enc and pair is not None:
        info.segment_ids = list(enc["token_type_ids"])
    inputs = {
        k: torch.tensor([enc[k]], device=bundle.device)
        for k in ("input_ids", "attention_mask", "token_type_ids")
        if k in enc and accepts_argument(bundle.model, k)
    }
    plan = _plan(bundle, info, memory_mb, keep_weights)
    base = getattr(bundle.model, "base_model", bundle.model)
    base_inputs = {k: v for k, v in inputs.items() if accepts_argument(base, k)}
    with inference(bundle.model), attention_lock(bundle.model):  # base shares the model's config and kernel
        captured = capture(base, base_inputs, plan, ModelShape.of(bundle.model).layers)
    if captured is None:
        return _eager(
            bundle, text=text, pair=pair, info=info, inputs=inputs, truncated=truncated, note=note, memory_mb=memory_mb
        )
    if captured.maps.precision != "float32":
        note = (note + " " if note else "") + (
            "To fit the memory budget, maps are recomputed from float16 queries and keys (within about 1e-3); "
            "the statistics are exact."
        )
    return AttentionResult(
        bundle.name,
        text,
        pair,
        info,
        captured.weights,
        captured.stats,
        causal=bundle.is_causal,
        truncated=truncated,
        note=note,
        pooled=captured.pooled,
        block_size=plan.block_size,
        maps=captured.maps,
    )


def _plan(bundle: ModelBundle, info: TokenInfo, memory_mb: int | None, keep_weights: bool | None) -> ScanPlan:
    """How the call stays within its budget: full maps kept or not, float32 or float16 queries and keys,
    queries per step. Raises ``MemoryBudgetError`` when even the smallest plan does not fit."""
    shape = ModelShape.of(bundle.model)
    layers, heads, kv_heads, head_dim = shape.layers, shape.heads, shape.kv_heads, shape.head_dim
    n = len(info.text)
    budget = budget_bytes(memory_mb)
    size = pooled_bins(n)
    blocks = -(-n // size)
    padded = blocks * size
    forward = shape.fast_layer_bytes(n)  # one layer's activations at once (the kernel keeps no maps)
    pooled = 4 * (layers + 1) * heads * blocks * blocks
    weights = 4 * layers * heads * n * n
    # scores, probabilities and a temporary; distances (non-causal: two int64 temporaries and a float copy);
    # the induction mask and, at worst (one token repeated), its indices
    per_row = 4 * heads * padded * 3 + 33 * padded
    rows = max(size, min(budget // 16, 64 * 2**20) // per_row // size * size)
    rows = min(rows, padded)
    mask = n * n if getattr(bundle.model.config, "sliding_window", None) else 0  # a mask that is kept
    # the scan runs inside a layer's attention, when the layer holds its input, queries, keys and values,
    # not its MLP: the two peaks do not add up
    scan = rows * per_row + 4 * n * 4 * shape.hidden
    fixed = max(forward, scan) + pooled + mask
    keys = layers * n * (heads + kv_heads) * head_dim  # elements of every layer's queries and keys
    if keep_weights is None:
        keep_weights = weights <= budget // 4 and fixed + weights + 4 * keys <= budget
    extra = weights if keep_weights else 0
    storage = torch.float32 if fixed + extra + 4 * keys <= budget else torch.float16
    require(
        fixed + extra + keys * (4 if storage == torch.float32 else 2),
        memory_mb,
        f"attention on {n:,} tokens of {bundle.name} ({layers} layers × {heads} heads"
        + (", keeping every full map)" if keep_weights else ")"),
        "a shorter text (max_tokens=...)" + (" or keep_weights=False" if keep_weights else ""),
    )
    return ScanPlan(
        special=np.asarray(info.special, dtype=bool),
        punctuation=np.asarray(info.punctuation, dtype=bool),
        ids=np.asarray(info.ids or [-1] * n),
        block_size=size,
        rows_per_step=int(rows),
        keep_weights=bool(keep_weights),
        storage=storage,
    )


def _eager(
    bundle: ModelBundle,
    *,
    text: str,
    pair: str | None,
    info: TokenInfo,
    inputs: dict[str, torch.Tensor],
    truncated: bool,
    note: str,
    memory_mb: int | None,
) -> AttentionResult:
    """Every map from the model's eager attention, for models whose queries and keys cannot be captured."""
    shape = ModelShape.of(bundle.model)
    n = len(info.text)
    maps = shape.attention_maps_bytes(n)
    require(
        # the model's maps and our copy of them, one layer's activations, one layer's float64 statistics
        2 * maps + shape.layer_bytes(n) + 4 * 8 * shape.heads * n * n,
        memory_mb,
        f"eager attention on {n:,} tokens of {bundle.name} (whose attention can only be read whole)",
        "a shorter text (max_tokens=...)",
    )
    with eager_attention(bundle.model), inference(bundle.model):
        out = bundle.model(**inputs, output_attentions=True)
    if not out.attentions:
        raise ProbeError(f"{bundle.name} returned no attention weights; it may not support output_attentions.")
    weights = np.empty((len(out.attentions), *out.attentions[0].shape[1:]), dtype=np.float32)  # (layers, heads, q, k)
    for layer, maps_of_layer in enumerate(out.attentions):
        weights[layer] = maps_of_layer[0].float().cpu().numpy()
    del out  # the model's own copy
    result = AttentionResult(
        bundle.name, text, pair, info, weights, causal=bundle.is_causal, truncated=truncated, note=note
    )
    result.stats = head_statistics(weights, info)
    return result


def head_statistics(weights: np.ndarray, tokens: TokenInfo) -> dict[str, np.ndarray]:
    """Per head, averaged over queries: entropy (nats), mean attention distance (tokens), and the share
    of attention on special tokens, on punctuation, on the previous, the next and the same token, and
    on induction keys (the token after an earlier occurrence of the query's token; averaged over the
    queries that have one, 0 when none do). From full maps ``(layers, heads, query, key)``, one layer at
    a time; ``attention`` computes the same streaming. Returns name -> ``(layers, heads)`` float32."""
    layers, heads, n, _ = weights.shape
    positions = np.arange(n)
    distance = np.abs(positions[:, None] - positions[None, :])  # (query, key)
    special = np.asarray(tokens.special, dtype=bool)
    punctuation = np.asarray(tokens.punctuation, dtype=bool)
    induction = induction_mask(np.asarray(tokens.ids or [-1] * n), special)  # (query, key)
    with_induction = induction.any(axis=1)
    stats = {name: np.zeros((layers, heads)) for name in STATISTICS}
    for layer in range(layers):
        w = weights[layer].astype(np.float64)  # (heads, query, key)
        with np.errstate(divide="ignore", invalid="ignore"):
            stats["entropy"][layer] = -np.where(w > 0, w * np.log(w), 0.0).sum(-1).mean(-1)
        stats["mean_distance"][layer] = (w * distance).sum(-1).mean(-1)
        stats["special"][layer] = w[..., special].sum(-1).mean(-1)
        stats["punctuation"][layer] = w[..., punctuation].sum(-1).mean(-1)
        if n > 1:
            stats["previous"][layer] = w[:, positions[1:], positions[:-1]].mean(-1)
            stats["next"][layer] = w[:, positions[:-1], positions[1:]].mean(-1)
        stats["self"][layer] = w[:, positions, positions].mean(-1)
        if with_induction.any():
            stats["induction"][layer] = (w * induction).sum(-1)[:, with_induction].mean(-1)
    return {k: v.astype(np.float32) for k, v in stats.items()}


def attention_rollout(result: AttentionResult, *, add_residual: bool = True) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020): heads averaged, the residual added as 0.5·A + 0.5·I,
    rows renormalised, and the layers multiplied; returns ``(layers, query, key)``, the rollout up to each layer.

    Exact where the result keeps its full weights. For longer texts it is the rollout between blocks
    of ``result.block_size`` tokens, from the pooled maps: ``(layers, blocks, blocks)``, each block's
    row the share of its representation that flows from each block (exact when attention is even
    within blocks, an approximation otherwise).
    """
    if result.full_weights is not None:
        mean: np.ndarray = result.full_weights.mean(axis=1, dtype=np.float64)  # (layers, query, key)
    else:
        mean = result.pooled.astype(np.float64).mean(axis=1)  # (layers, blocks, blocks)
    n = mean.shape[-1]
    rollout = np.eye(n)
    out = np.empty_like(mean)
    for layer in range(mean.shape[0]):
        a = 0.5 * mean[layer] + 0.5 * np.eye(n) if add_residual else mean[layer]
        a = a / a.sum(-1, keepdims=True)
        rollout = a @ rollout
        out[layer] = rollout
    return out.astype(np.float32)


def attention_flow(result: AttentionResult, *, max_tokens: int = 48) -> np.ndarray:
    """Attention flow (Abnar & Zuidema 2020): the max flow from each input token to each position of the
    last layer through the layered graph of (residual-added) attention; returns ``(query, key)``.

    Costs one max-flow per pair of tokens, so it is for short inputs: more than ``max_tokens``
    tokens raises ``ProbeError`` (use attention_rollout there).
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_flow

    layers, n = result.num_layers, result.num_tokens
    if n > max_tokens:
        raise ProbeError(
            f"Attention flow is for short inputs: {n} tokens is more than {max_tokens}; "
            "use attention_rollout, or raise max_tokens and wait."
        )
    mean = np.stack(
        [np.mean([result.rows(layer, h) for h in range(result.num_heads)], axis=0) for layer in range(layers)]
    ).astype(np.float64)  # (layers, query, key)
    scale = 1_000_000  # scipy's max flow wants integer capacities
    rows, cols, caps = [], [], []
    for layer in range(layers):
        a = 0.5 * mean[layer] + 0.5 * np.eye(n)
        a = a / a.sum(-1, keepdims=True)
        for q in range(n):
            for k in range(n):
                c = round(a[q, k] * scale)
                if c > 0:
                    rows.append(layer * n + k)  # from key at layer l
                    cols.append((layer + 1) * n + q)  # to query at layer l+1
                    caps.append(c)
    size = (layers + 1) * n
    graph = csr_matrix((np.asarray(caps, dtype=np.int32), (rows, cols)), shape=(size, size))
    flow = np.zeros((n, n))
    for q in range(n):
        for k in range(n):
            flow[q, k] = maximum_flow(graph, k, layers * n + q).flow_value / scale
    flow /= np.maximum(flow.sum(-1, keepdims=True), 1e-12)
    return flow.astype(np.float32)
