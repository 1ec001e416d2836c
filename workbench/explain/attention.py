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
from workbench.explain.inputs import accepts_argument, check_text, inference
from workbench.explain.tokens import TokenInfo, token_info
from workbench.models import eager_attention

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["STATISTICS", "AttentionResult", "attention", "attention_flow", "attention_rollout", "head_statistics"]

STATISTICS = ("entropy", "mean_distance", "special", "punctuation", "previous", "next", "self")


@dataclass
class AttentionResult:
    """Attention of one input: tokens, weights ``(layers, heads, query, key)`` and per-head statistics."""

    model: str
    text: str
    pair: str | None
    tokens: TokenInfo
    weights: np.ndarray  # (layers, heads, query, key), float32, rows sum to 1
    stats: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (layers, heads)
    causal: bool = False
    truncated: bool = False
    note: str = ""

    @property
    def num_layers(self) -> int:
        return int(self.weights.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.weights.shape[1])

    @property
    def num_tokens(self) -> int:
        return int(self.weights.shape[2])

    def to_dict(self, include_weights: bool = False) -> dict[str, Any]:
        """Tokens, shape, statistics and note; the weights too when asked (they can be large)."""
        d = {
            "model": self.model,
            "text": self.text,
            "pair": self.pair,
            "tokens": self.tokens.to_dict(),
            "shape": list(self.weights.shape),
            "stats": {k: v.tolist() for k, v in self.stats.items()},
            "causal": self.causal,
            "truncated": self.truncated,
            "note": self.note,
        }
        if include_weights:
            d["weights"] = self.weights.tolist()
        return d

    def __repr__(self) -> str:
        return (
            f"AttentionResult({self.model}, {self.num_tokens} tokens, {self.num_layers} layers x "
            f"{self.num_heads} heads{', truncated' if self.truncated else ''})"
        )


def attention(
    bundle: ModelBundle, text: str, pair: str | None = None, *, max_tokens: int | None = None
) -> AttentionResult:
    """Run the model once with eager attention and return every head's weights and statistics.

    Works however the model was loaded (SDPA and flash kernels return no weights, so the call
    switches to eager attention and back). Text longer than the model's positions (or
    ``max_tokens``) is truncated, and the result's ``note`` says so.
    Raises ``ProbeError`` for empty or non-string text. bertviz's own views of the result:
    ``workbench.ui.to_bertviz(result)``.
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
    with eager_attention(bundle.model), inference(bundle.model):
        out = bundle.model(**inputs, output_attentions=True)
    if not out.attentions:
        raise ProbeError(f"{bundle.name} returned no attention weights; it may not support output_attentions.")
    weights = torch.stack([a[0].float() for a in out.attentions]).cpu().numpy()  # (layers, heads, query, key)
    result = AttentionResult(
        bundle.name, text, pair, info, weights, causal=bundle.is_causal, truncated=truncated, note=note
    )
    result.stats = head_statistics(weights, info)
    return result


def head_statistics(weights: np.ndarray, tokens: TokenInfo) -> dict[str, np.ndarray]:
    """Per head, averaged over queries: entropy (nats), mean attention distance (tokens), and the share
    of attention on special tokens, on punctuation, on the previous, the next and the same token."""
    layers, heads, n, _ = weights.shape
    w = weights.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(w > 0, w * np.log(w), 0.0)
    entropy = -plogp.sum(-1).mean(-1)
    positions = np.arange(n)
    distance = np.abs(positions[:, None] - positions[None, :])  # (query, key)
    mean_distance = (w * distance).sum(-1).mean(-1)
    special = np.asarray(tokens.special, dtype=bool)
    punctuation = np.asarray(tokens.punctuation, dtype=bool)
    stats = {
        "entropy": entropy,
        "mean_distance": mean_distance,
        "special": w[..., special].sum(-1).mean(-1) if special.any() else np.zeros((layers, heads)),
        "punctuation": w[..., punctuation].sum(-1).mean(-1) if punctuation.any() else np.zeros((layers, heads)),
        "previous": w[..., positions[1:], positions[:-1]].mean(-1) if n > 1 else np.zeros((layers, heads)),
        "next": w[..., positions[:-1], positions[1:]].mean(-1) if n > 1 else np.zeros((layers, heads)),
        "self": w[..., positions, positions].mean(-1),
    }
    return {k: v.astype(np.float32) for k, v in stats.items()}


def attention_rollout(result: AttentionResult, *, add_residual: bool = True) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020): heads averaged, the residual added as 0.5·A + 0.5·I,
    rows renormalised, and the layers multiplied; returns ``(layers, query, key)``, the rollout up to each layer."""
    mean: np.ndarray = result.weights.astype(np.float64).mean(axis=1)  # (layers, query, key)
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

    layers, _, n, _ = result.weights.shape
    if n > max_tokens:
        raise ProbeError(
            f"Attention flow is for short inputs: {n} tokens is more than {max_tokens}; "
            "use attention_rollout, or raise max_tokens and wait."
        )
    mean = result.weights.astype(np.float64).mean(axis=1)
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
