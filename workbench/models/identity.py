"""What identifies a model's weights: the fingerprint a saved readout (a steering vector, a tuned lens)
keeps of the model it was made from, so that it refuses any other model with one sentence."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["fingerprint_mismatch", "model_fingerprint"]

_SAMPLE_ROWS, _SAMPLE_COLUMNS = 8, 4  # the embedding entries a fingerprint keeps: enough to tell two models apart


def model_fingerprint(model: torch.nn.Module) -> dict[str, Any]:
    """A model's class, sizes, and a few of its embedding weights.

    The weights (32 entries spread over the embedding matrix) tell apart two models of the same shape:
    another training run, another checkpoint, another seed.
    """
    config = getattr(model, "config", None)
    weight: Any = getattr(model.get_input_embeddings(), "weight", None)  # type: ignore[operator]
    if callable(weight):  # some quantized modules hand their weight out through a method
        weight = weight()
    sample: list[float] = []
    if isinstance(weight, torch.Tensor) and weight.dim() == 2:
        if weight.is_quantized:
            weight = weight.dequantize()
        rows = np.linspace(0, weight.shape[0] - 1, _SAMPLE_ROWS).round().astype(int)
        cols = np.linspace(0, weight.shape[1] - 1, _SAMPLE_COLUMNS).round().astype(int)
        picked = weight.detach()[torch.as_tensor(rows)][:, torch.as_tensor(cols)]  # (rows, cols)
        sample = [float(v) for v in picked.float().cpu().flatten()]
    return {
        "architecture": type(model).__name__,
        "hidden": int(getattr(config, "hidden_size", 0) or 0),
        "layers": int(getattr(config, "num_hidden_layers", 0) or 0),
        "heads": int(getattr(config, "num_attention_heads", 0) or 0),
        "vocab": int(getattr(config, "vocab_size", 0) or 0),
        "embedding_sample": sample,
    }


def _shape_of(fingerprint: dict[str, Any]) -> str:
    return f"{fingerprint.get('architecture')}, hidden {fingerprint.get('hidden')}, {fingerprint.get('layers')} layers"


def fingerprint_mismatch(saved: dict[str, Any], model: torch.nn.Module) -> str | None:
    """How the model ``saved`` describes differs from ``model``, as words to follow "made from <name>";
    ``None`` when it is the same model.

    The embedding sample is compared with a tolerance, so the same weights in half precision still match."""
    now = model_fingerprint(model)
    if any(saved.get(key) != now[key] for key in ("architecture", "hidden", "layers", "heads", "vocab")):
        return f" ({_shape_of(saved)}), not from a model like this one ({_shape_of(now)})"
    a, b = np.asarray(saved.get("embedding_sample", []), float), np.asarray(now["embedding_sample"], float)
    if a.shape != b.shape:
        return ", a model whose embeddings cannot be compared with this one's"
    scale = float(np.abs(a).max()) if a.size else 0.0
    if not np.allclose(a, b, rtol=1e-2, atol=1e-3 * scale):
        return ", another model of the same shape (its embedding weights differ: another checkpoint, run or seed)"
    return None
