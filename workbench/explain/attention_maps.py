"""Every head's attention map at any length, kept as each layer's queries and keys instead of the maps.

A model's full maps grow with the square of the text: SmolLM2 at 4,096 tokens has 30 × 9 maps of
4,096 × 4,096, 18 GB in float32. Instead, one forward with the model's own SDPA kernel hands each
layer's queries and keys (after rotary embeddings, before the kernel) to ``_capture``, which

- computes the per-head statistics and block-pooled maps streaming over blocks of queries, from
  the exact float32 queries and keys, while the forward goes on (a few MB at a time), and
- keeps the queries and keys (float32, or float16 where float32 does not fit the budget), from
  which ``AttentionMaps`` recomputes any head, row or region on demand: ``softmax(q·kᵀ·scale + mask)``,
  the same arithmetic as the model's eager attention.

Works for every model whose attention goes through transformers' ``AttentionInterface`` (BERT,
ModernBERT, Llama, GPT-2 and most others); ``capture`` returns None for the rest, and the caller
falls back to eager attention.

Example::

    with inference(model):
        captured = capture(model.base_model, inputs, plan)
    captured.maps.rows(layer=3, head=1, start=0, stop=64)   # (64, n) float32
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from workbench.models import attention_lock

__all__ = ["AttentionMaps", "Captured", "LayerKeys", "ScanPlan", "capture", "induction_mask", "pooled_bins"]

CAPTURE = "workbench_capture"  # the name the capture is registered under in transformers' AttentionInterface
POOLED_BINS = 256  # pooled maps are at most this many blocks a side
_state = threading.local()  # the collector of the forward running in this thread


def pooled_bins(n: int, bins: int = POOLED_BINS) -> int:
    """Tokens per block of the pooled maps for ``n`` tokens: 1 up to ``bins`` tokens, then ceil(n / bins)."""
    return max(1, -(-n // bins))


def induction_mask(ids: np.ndarray, special: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Where the induction pattern points, for queries ``start:stop``: ``(rows, n)`` bool, True at key ``k``
    when the token before it, ``k - 1``, is the query's own token seen earlier (``ids[k - 1] == ids[q]``,
    ``k < q``): the token that followed an earlier occurrence. Special tokens are left out."""
    ids = np.asarray(ids)
    special = np.asarray(special, dtype=bool)
    n = len(ids)
    stop = n if stop is None else stop
    queries = np.arange(start, stop)[:, None]
    keys = np.arange(n)[None, :]
    before = np.concatenate([[-1], ids[:-1]])  # the token before each key; none before the first
    usable = np.concatenate([[False], ~special[:-1]])
    mask: np.ndarray = (before[None, :] == ids[start:stop, None]) & usable[None, :] & (keys < queries)
    mask &= ~special[start:stop, None]
    return mask


@dataclass
class LayerKeys:
    """One layer's queries and keys, what its attention is recomputed from."""

    query: torch.Tensor  # (heads, n, head_dim)
    key: torch.Tensor  # (kv_heads, n, head_dim): grouped-query heads share a key head
    scaling: float
    causal: bool  # keys after the query are masked
    allowed: torch.Tensor | None  # (n, n) bool where the model's own mask is neither full nor causal


@dataclass
class AttentionMaps:
    """Every head's attention, recomputed on demand from each layer's queries and keys.

    Rows sum to 1; values equal the model's eager attention within float32 rounding (within 1e-3
    where the queries and keys were kept in float16 to fit the budget: ``precision`` says which).
    """

    layers: list[LayerKeys]
    num_tokens: int
    precision: str  # "float32" or "float16"

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_heads(self) -> int:
        return int(self.layers[0].query.shape[0])

    def nbytes(self) -> int:
        """Bytes held: queries, keys and masks of every layer."""
        seen: set[int] = set()
        total = 0
        for layer in self.layers:
            for t in (layer.query, layer.key, layer.allowed):
                if t is not None and t.data_ptr() not in seen:
                    seen.add(t.data_ptr())
                    total += t.numel() * t.element_size()
        return total

    def rows(self, layer: int, head: int, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of one head's map: ``(stop - start, n)`` float32."""
        lk = self.layers[layer]
        group = lk.query.shape[0] // lk.key.shape[0]
        kv = head // group
        one = LayerKeys(lk.query[head : head + 1], lk.key[kv : kv + 1], lk.scaling, lk.causal, lk.allowed)
        out: np.ndarray = _block_probs(one, one.key, start, stop, key_stop=self.num_tokens, n=self.num_tokens)[
            0
        ].numpy()
        return out


@dataclass
class ScanPlan:
    """What the streaming pass computes besides the statistics, and how much it holds at once."""

    special: np.ndarray  # (n,) bool
    punctuation: np.ndarray  # (n,) bool
    ids: np.ndarray  # (n,) token ids, for the induction share
    block_size: int  # tokens per block of the pooled maps
    rows_per_step: int  # queries scored at once (a multiple of block_size)
    keep_weights: bool  # also return every full map (short texts only)
    storage: torch.dtype  # dtype the queries and keys are kept in


@dataclass
class Captured:
    """What one captured forward leaves: the maps' sources, the statistics and the pooled maps."""

    maps: AttentionMaps
    stats: dict[str, np.ndarray]  # name -> (layers, heads)
    # (layers, heads, blocks, blocks): mean over a block's queries of the attention summed over a key block
    pooled: np.ndarray
    weights: np.ndarray | None  # (layers, heads, n, n) when plan.keep_weights
    unsupported: str = ""


@dataclass
class _Collector:
    plan: ScanPlan
    n: int
    num_layers: int
    layers: list[LayerKeys] = field(default_factory=list)
    sums: list[dict[str, np.ndarray]] = field(default_factory=list)
    kept: tuple[torch.Tensor, torch.Tensor, np.ndarray] | None = None  # every layer's queries, keys, pooled maps
    weights: np.ndarray | None = None  # (layers, heads, n, n), filled layer by layer when the plan keeps them
    unsupported: str = ""
    masks: dict[int, tuple[bool, torch.Tensor | None]] = field(default_factory=dict)  # data_ptr -> (causal, allowed)

    def add(
        self, module: Any, query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor | None, **kwargs: Any
    ) -> None:
        """Scan one layer's attention as the forward reaches it, and keep its queries and keys."""
        scaling, is_causal = kwargs.pop("scaling", None), kwargs.pop("is_causal", None)
        if self.unsupported:
            return
        for name in ("softcap", "s_aux", "sinks"):
            if kwargs.get(name) is not None:
                self.unsupported = f"its attention uses {name}"
                return
        if kwargs.get("position_bias") is not None:
            self.unsupported = "its attention adds a position bias"
            return
        if query.shape[0] != 1 or query.shape[2] != self.n or key.shape[2] != self.n:
            self.unsupported = "its attention layers see another length than the input"
            return
        if len(self.layers) >= self.num_layers:
            self.unsupported = "its attention runs more often than it has layers"
            return
        causal = bool(is_causal if is_causal is not None else getattr(module, "is_causal", True))  # as SDPA
        allowed = None
        if mask is not None:
            causal, allowed = self._mask(mask)
        scale = float(scaling) if scaling is not None else float(query.shape[-1]) ** -0.5
        exact = LayerKeys(query[0], key[0], scale, causal, allowed)
        if self.plan.keep_weights and self.weights is None:
            self.weights = np.zeros((self.num_layers, query.shape[1], self.n, self.n), dtype=np.float32)
        out = self.weights[len(self.layers)] if self.weights is not None else None
        sums, pooled = _scan(exact, self.n, self.plan, out)
        self.sums.append(sums)
        if self.kept is None:
            # Everything kept lives in three blocks allocated once, not in the forward's own tensors: those
            # sit among the forward's short-lived allocations and keep the allocator from reusing them
            # (SmolLM2 at 4,096 tokens: 858 MB at peak over the process's memory that way, 692 MB this way).
            self.kept = (
                torch.empty((self.num_layers, *query.shape[1:]), dtype=self.plan.storage),
                torch.empty((self.num_layers, *key.shape[1:]), dtype=self.plan.storage),
                np.empty((self.num_layers, *pooled.shape), dtype=np.float32),
            )
        queries, keys, pooled_maps = self.kept
        i = len(self.layers)
        queries[i].copy_(query[0])
        keys[i].copy_(key[0])
        pooled_maps[i] = pooled
        self.layers.append(LayerKeys(queries[i], keys[i], scale, causal, allowed))

    def _mask(self, mask: torch.Tensor) -> tuple[bool, torch.Tensor | None]:
        """(causal, allowed): a full or causal mask becomes a flag; any other is kept as an (n, n) bool."""
        ptr = mask.data_ptr()
        if ptr not in self.masks:  # the layers share one mask: look at it once
            m = mask[0, 0] if mask.dim() == 4 else mask
            allowed = (m if m.dtype == torch.bool else m > torch.finfo(m.dtype).min / 2).expand(self.n, self.n)
            if bool(allowed.all()):
                self.masks[ptr] = (False, None)
            elif torch.equal(allowed, torch.ones(self.n, self.n, dtype=torch.bool).tril_()):
                self.masks[ptr] = (True, None)
            else:
                self.masks[ptr] = (False, allowed.clone())
        return self.masks[ptr]


def _scores(lk: LayerKeys, start: int, stop: int, key: torch.Tensor) -> torch.Tensor:
    """``q·kᵀ·scale`` of queries ``start:stop`` against ``key`` ``(kv_heads, keys, d)``: ``(heads, rows, keys)``."""
    heads, _, d = lk.query.shape
    kv_heads = key.shape[0]
    group = heads // kv_heads
    rows = stop - start
    q = lk.query[:, start:stop].float().reshape(kv_heads, group * rows, d)
    scores = torch.bmm(q, key.float().transpose(1, 2))  # (kv_heads, group * rows, keys)
    return scores.view(heads, rows, key.shape[1]).mul_(lk.scaling)


def _allowed(lk: LayerKeys, start: int, stop: int, key_stop: int, n: int) -> torch.Tensor:
    """Which keys each query may see under the layer's own mask: ``(rows, key_stop)`` bool, False on padding."""
    assert lk.allowed is not None  # only layers with a mask of their own keep one
    allowed = torch.zeros(stop - start, key_stop, dtype=torch.bool, device=lk.allowed.device)
    width = min(key_stop, n)
    allowed[:, :width] = lk.allowed[start:stop, :width]
    return allowed


def _scan(
    lk: LayerKeys, n: int, plan: ScanPlan, out: np.ndarray | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One layer's per-head statistics and pooled map, over blocks of queries; its full maps written into
    ``out`` ``(heads, n, n)`` when given. Runs on the device the queries are on; returns numpy arrays."""
    heads = lk.query.shape[0]
    device = lk.query.device
    size = plan.block_size
    blocks = -(-n // size)
    padded = blocks * size
    key = lk.key
    if padded > n:  # keys padded to whole blocks, so a block pools with one reshape; the padding is masked
        key = torch.cat([key, key.new_zeros(key.shape[0], padded - n, key.shape[2])], dim=1)

    def per_key(flags: np.ndarray) -> torch.Tensor:  # (padded,) float32 on the device, 0 on the padding
        column = torch.zeros(padded)
        column[:n] = torch.from_numpy(flags.astype(np.float32))
        return column.to(device)

    special, punctuation = per_key(plan.special), per_key(plan.punctuation)
    positions = torch.arange(padded, dtype=torch.float32, device=device)
    names = ("entropy", "mean_distance", "special", "punctuation", "previous", "next", "self", "induction")
    sums = {name: torch.zeros(heads, dtype=torch.float64, device=device) for name in names}
    pooled = torch.zeros(heads, blocks, blocks, device=device)
    with_induction = 0  # queries that have an induction key
    for start in range(0, n, plan.rows_per_step):
        stop = min(start + plan.rows_per_step, n)
        key_stop = -(-stop // size) * size if lk.causal and lk.allowed is None else padded
        shifted = _masked_scores(lk, key, start, stop, key_stop=key_stop, n=n)
        shifted.sub_(shifted.amax(-1, keepdim=True))  # scores minus each row's max: <= 0
        p = shifted.exp()
        total = p.sum(-1, keepdim=True)
        p.div_(total)  # softmax, as the eager kernel: (heads, rows, keys)
        rows = torch.arange(start, stop, device=device)
        local = rows - start
        # entropy = -sum p log p = log(total) - sum p * shifted (masked keys: p = 0, shifted finite)
        rows_dot = torch.bmm(p.view(-1, 1, key_stop), shifted.view(-1, key_stop, 1)).view(heads, -1)  # sum p*shifted
        sums["entropy"] += (total[..., 0].log() - rows_dot).sum(-1, dtype=torch.float64)
        del shifted
        flat = p.view(-1, key_stop)
        # mean key position, special share, punctuation share: three matrix-vector products, each (heads, rows)
        # (one product with three columns is ten times slower: BLAS is not made for so narrow a matrix)
        position, on_special, on_punctuation = (
            (flat @ column[:key_stop]).view(heads, -1) for column in (positions, special, punctuation)
        )
        if lk.causal and lk.allowed is None:  # every key at or before the query: |q - k| = q - k
            distance = rows.float() - position
        else:
            distance = (p * (rows[:, None] - positions[None, :key_stop]).abs_()).sum(-1)
        sums["mean_distance"] += distance.sum(-1, dtype=torch.float64)
        sums["special"] += on_special.sum(-1, dtype=torch.float64)
        sums["punctuation"] += on_punctuation.sum(-1, dtype=torch.float64)
        sums["self"] += p[:, local, rows].sum(-1, dtype=torch.float64)
        prev = rows >= 1
        sums["previous"] += p[:, local[prev], rows[prev] - 1].sum(-1, dtype=torch.float64)
        nxt = (rows + 1 < n) & (rows + 1 < key_stop)
        sums["next"] += p[:, local[nxt], rows[nxt] + 1].sum(-1, dtype=torch.float64)
        induction = induction_mask(plan.ids, plan.special, start, stop)[:, : min(key_stop, n)]  # (rows, keys)
        query_index, key_index = (torch.from_numpy(a).to(device) for a in np.nonzero(induction))
        if len(query_index):
            sums["induction"] += p[:, query_index, key_index].sum(-1, dtype=torch.float64)
            with_induction += int(induction.any(axis=1).sum())
        # pooled: summed over each query block × key block (the last query block may be short)
        count = stop - start
        short = -count % size
        p_rows = torch.cat([p, p.new_zeros(heads, short, key_stop)], dim=1) if short else p
        pooled[:, start // size : -(-stop // size), : key_stop // size] += p_rows.view(
            heads, (count + short) // size, size, key_stop // size, size
        ).sum((2, 4))
        if out is not None:
            out[:, start:stop, : min(key_stop, n)] = p[..., :n].cpu().numpy()
    counts = torch.full((blocks,), float(size), device=device)
    counts[-1] = n - (blocks - 1) * size
    pooled /= counts[None, :, None]  # mean over a block's queries: each row sums to 1 over the key blocks
    divisors = {"previous": max(n - 1, 1), "next": max(n - 1, 1), "induction": max(with_induction, 1)}
    means = {k: (v / divisors.get(k, n)).cpu().numpy() for k, v in sums.items()}
    return means, pooled.cpu().numpy()


MASKED = -1e30  # added to a masked score: exp() gives exactly 0, and 0 × the score stays finite (unlike -inf)


def _masked_scores(lk: LayerKeys, key: torch.Tensor, start: int, stop: int, *, key_stop: int, n: int) -> torch.Tensor:
    """``q·kᵀ·scale`` of queries ``start:stop`` against ``key[:, :key_stop]``, keys a query may not see set to
    ``MASKED`` (keys past ``n`` are padding): ``(heads, rows, key_stop)``."""
    scores = _scores(lk, start, stop, key[:, :key_stop])
    if lk.allowed is not None:
        return scores.add_((~_allowed(lk, start, stop, key_stop, n)).float().mul_(MASKED))
    first = start + 1 if lk.causal else n  # keys before this are seen by every query of the block
    if first < key_stop:
        queries = torch.arange(start, stop, device=scores.device)[:, None]
        keys = torch.arange(first, key_stop, device=scores.device)[None, :]
        hidden = keys >= n
        if lk.causal:
            hidden = hidden | (keys > queries)
        scores[..., first:key_stop].add_(hidden.float().mul_(MASKED))  # 200x faster than masked_fill_ with MASKED
    return scores


def _block_probs(lk: LayerKeys, key: torch.Tensor, start: int, stop: int, *, key_stop: int, n: int) -> torch.Tensor:
    """Attention of queries ``start:stop`` to ``key[:, :key_stop]`` (keys past ``n`` are padding, masked out):
    ``(heads, rows, key_stop)``, the eager kernel's arithmetic: softmax(q·kᵀ·scale + mask)."""
    return torch.softmax(_masked_scores(lk, key, start, stop, key_stop=key_stop, n=n), dim=-1)


def _capture_forward(  # noqa: PLR0917 - the signature transformers calls every attention function with
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> Any:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    collector: _Collector | None = getattr(_state, "collector", None)
    if collector is not None:
        collector.add(module, query, key, attention_mask, scaling=scaling, is_causal=is_causal, **kwargs)
    return sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
    )


@functools.cache
def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(CAPTURE, _capture_forward)
    AttentionMaskInterface.register(CAPTURE, sdpa_mask)


@contextlib.contextmanager
def _capturing(model: Any, collector: _Collector) -> Iterator[None]:
    """The model's attention goes through ``_capture_forward`` inside the block; its kernel is restored after.

    Holds the model's ``attention_lock``: another thread's call waits rather than restore this one's kernel.
    """
    _register()
    with attention_lock(model):
        before = getattr(model.config, "_attn_implementation", None) or "eager"
        _state.collector = collector
        try:
            model.set_attn_implementation(CAPTURE)
            try:
                yield
            finally:
                model.set_attn_implementation(before)
        finally:
            _state.collector = None


def capture(model: Any, inputs: dict[str, torch.Tensor], plan: ScanPlan, num_layers: int) -> Captured | None:
    """Run ``model`` (the base model, no output head) once on one text, capturing its attention per ``plan``.

    Returns None when the model's attention does not go through transformers' attention interface
    (or uses something the recomputation cannot follow: soft-capping, sinks, a position bias); the
    caller then falls back to eager attention. Call it under ``inference``.
    """
    if not hasattr(model, "set_attn_implementation"):
        return None
    n = int(inputs["input_ids"].shape[1])
    collector = _Collector(plan, n, num_layers)
    try:
        with _capturing(model, collector):
            model(**inputs)
    except (ValueError, KeyError) as e:  # a model that refuses an attention implementation it does not know
        if "attn" in str(e).lower() or "attention" in str(e).lower():
            return None
        raise
    if collector.unsupported or len(collector.layers) != num_layers:
        return None
    stats = {k: np.stack([s[k] for s in collector.sums]).astype(np.float32) for k in collector.sums[0]}
    precision = "float32" if plan.storage == torch.float32 else "float16"
    return Captured(
        AttentionMaps(collector.layers, n, precision),
        stats,
        collector.kept[2] if collector.kept is not None else np.zeros((0, 0, 0, 0), np.float32),
        collector.weights,
    )
