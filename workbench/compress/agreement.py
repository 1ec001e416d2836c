"""How alike a model and its compressed copy look inside: attention drift per head, attribution agreement."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from workbench.errors import CompressionError
from workbench.explain.budget import memory_budget, require
from workbench.explain.footprint import ModelShape
from workbench.models import ModelBundle, eager_attention
from workbench.models.onnx import OnnxModel

__all__ = [
    "attention_drift",
    "attribution_agreement",
    "check_attribution",
    "drift_pairing",
    "jensen_shannon",
    "require_attribution_budget",
    "require_drift_budget",
]


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen–Shannon divergence in bits between distributions along the last axis (0 when p equals q)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(a > 0, a * np.log2(np.where(a > 0, a, 1) / np.where(m > 0, m, 1)), 0.0)
        return np.asarray(terms.sum(-1))

    return np.asarray(np.clip((kl(p) + kl(q)) / 2, 0.0, 1.0))


def _encode(bundle: ModelBundle, text: str) -> Any:
    from workbench.explain.inputs import with_model_mask

    return bundle.tokenizer(
        with_model_mask(bundle.tokenizer, text), return_tensors="pt", truncation=True, max_length=bundle.max_positions
    )


def _attentions(bundle: ModelBundle, text: str) -> tuple[np.ndarray, int]:
    """(layers, heads, query, key) attention of one text, and its length in tokens."""
    enc = _encode(bundle, text)
    model = bundle.model
    with torch.inference_mode():
        if isinstance(model, OnnxModel):
            out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_attentions=True)
        else:
            with eager_attention(model):
                out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_attentions=True)
    return torch.stack([a[0] for a in out.attentions]).float().numpy(), int(enc["input_ids"].shape[1])


def drift_pairing(original: ModelBundle, compressed: ModelBundle) -> tuple[list[int], str]:
    """The original's layer to compare with each of the compressed model's layers, and ``""``; or ``[]`` and why
    the two cannot be compared layer by layer.

    A student that records ``extra["distillation"]["layers"]`` (``every_other_layer``) is paired with the teacher
    layers it kept; otherwise the layer counts must match. Both need the same number of heads per layer.
    """
    a, b = original.model.config, compressed.model.config
    heads = (int(getattr(a, "num_attention_heads", 0) or 0), int(getattr(b, "num_attention_heads", 0) or 0))
    if heads[0] != heads[1]:
        return [], f"{heads[0]} and {heads[1]} attention heads per layer; drift compares head with head"
    total, own = int(a.num_hidden_layers), int(b.num_hidden_layers)
    kept = (compressed.extra.get("distillation") or {}).get("layers")
    if kept is not None:
        kept = [int(i) for i in kept]
        if len(kept) != own or not all(0 <= i < total for i in kept):
            return [], (
                f"{compressed.name} records teacher layers {kept} but has {own} layers against the original's "
                f"{total}; the record does not fit these two models"
            )
        return kept, ""
    if own != total:
        return [], (
            f"{total} and {own} layers, and {compressed.name} records no teacher layers it kept "
            "(every_other_layer does); drift compares a layer with the layer it came from"
        )
    return list(range(total)), ""


def require_drift_budget(original: ModelBundle, texts: Sequence[str], memory_mb: int | None = None) -> None:
    """Raise ``MemoryBudgetError`` when ``attention_drift`` on the longest text cannot fit: it holds one
    model's full maps while the other's forward gives its own (as the model's tensors, stacked, and
    copied to numpy), and the divergence's float64 temporaries of one layer."""
    if not texts:
        return
    shape = ModelShape.of(original.model)
    n = max(int(_encode(original, t)["input_ids"].shape[1]) for t in texts)
    maps = shape.attention_maps_bytes(n)
    divergence = 8 * 8 * shape.heads * n * n  # p, q, their mean, logs and masks of one layer, float64
    require(
        4 * maps + divergence + shape.layer_bytes(n),
        memory_mb,
        f"attention drift on {n:,} tokens of {original.name} (both models' full maps of {shape.layers} layers × "
        f"{shape.heads} heads)",
        "shorter texts",
    )


def attention_drift(
    original: ModelBundle,
    compressed: ModelBundle,
    texts: Sequence[str],
    *,
    layers: Sequence[int] | None = None,
    memory_mb: int | None = None,
) -> np.ndarray:
    """(rows, heads): Jensen–Shannon divergence between the two models' attention rows, over queries and texts.

    Row ``i`` compares ``compressed``'s layer ``i`` with ``original``'s layer ``layers[i]`` (a student that kept
    some of its teacher's layers); by default ``layers`` is every layer, one for one. Raises ``MemoryBudgetError``
    before any forward when the longest text's maps do not fit ``memory_mb`` (default: the kernel's budget).
    """
    if not texts:
        return np.zeros((0, 0))
    require_drift_budget(original, texts, memory_mb)
    per_text = []
    for text in texts:
        a, _ = _attentions(original, text)  # (layers, heads, query, key)
        b, _ = _attentions(compressed, text)  # (compressed layers, heads, query, key)
        pairs = list(layers) if layers is not None else list(range(len(a)))
        rows = [jensen_shannon(a[j], b[i]).mean(-1) for i, j in enumerate(pairs)]  # each (heads,)
        per_text.append(np.stack(rows))  # (rows, heads)
    return np.asarray(np.mean(per_text, axis=0))


def check_attribution(compressed: ModelBundle, method: str) -> bool:
    """Whether the method takes gradients; raises ``CompressionError`` for an unknown method, or a
    gradient method on an int8 or ONNX model."""
    from workbench.explain.attribution import METHODS

    if method not in METHODS:
        raise CompressionError(f"Unknown attribution method {method!r}; use one of: {', '.join(METHODS)}.")
    needs_gradients = method in ("integrated_gradients", "gradient_x_input")
    if needs_gradients and compressed.compression.get("method") in ("int8", "onnx"):
        raise CompressionError(
            f"{method} needs gradients, which int8 and ONNX models do not give; "
            "compare with attribution='occlusion' or 'shap'."
        )
    return needs_gradients


def require_attribution_budget(
    original: ModelBundle, compressed: ModelBundle, texts: Sequence[str], method: str, memory_mb: int | None = None
) -> None:
    """Raise ``MemoryBudgetError`` when an attribution of one of ``texts`` cannot fit (``attribute``'s own
    check, on both models); nothing to check for an encoder, which has no output to attribute."""
    from workbench.explain.attribution import require_budget

    check_attribution(compressed, method)
    if original.kind == "encoder":
        return
    for text in texts:
        for bundle in (original, compressed):
            require_budget(bundle, text, method, faithfulness=False, memory_mb=memory_mb)


def attribution_agreement(
    original: ModelBundle,
    compressed: ModelBundle,
    texts: Sequence[str],
    method: str,
    *,
    memory_mb: int | None = None,
) -> tuple[list[float], list[dict[str, Any]]]:
    """Spearman correlation of the two models' token attributions per text, and what a view shows of each.

    Raises ``CompressionError`` for an unknown method, or a gradient method on an int8 or ONNX model,
    and ``MemoryBudgetError`` before any attribution runs when one cannot fit ``memory_mb``.
    """
    from scipy.stats import spearmanr

    from workbench.explain import attribute

    memory_mb = memory_budget(memory_mb)
    require_attribution_budget(original, compressed, texts, method, memory_mb)
    spearman: list[float] = []
    examples: list[dict[str, Any]] = []
    if original.kind == "encoder":  # no head, so no output to attribute
        return spearman, examples
    for text in texts:
        a = attribute(original, text, method=method, faithfulness=False, memory_mb=memory_mb)
        b = attribute(compressed, text, target=a.target, method=method, faithfulness=False, memory_mb=memory_mb)
        sa, sb = a.scores[a.features], b.scores[b.features]
        if np.allclose(sa, sb):
            rho = 1.0
        elif sa.size < 2 or np.ptp(sa) == 0 or np.ptp(sb) == 0:
            rho = math.nan
        else:
            rho = float(spearmanr(sa, sb).statistic)
        spearman.append(rho)
        examples.append(
            {
                "text": text,
                "target": a.target_name,
                "tokens": list(a.tokens.text),
                "special": [bool(x) for x in a.tokens.special],
                "spaces": [seg[len(seg.rstrip()) :] != "" for seg in a.segments],
                "features": a.features.tolist(),
                "original": a.scores.tolist(),
                "compressed": b.scores.tolist(),
                "spearman": rho,
            }
        )
    return spearman, examples
