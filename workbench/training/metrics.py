"""Evaluation metrics and model FLOPs utilisation (MFU)."""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ParameterSplit",
    "classification_metrics",
    "finite_or_none",
    "flops_per_token",
    "improves",
    "lower_is_better",
    "parameter_split",
    "peak_basis",
    "peak_flops",
    "perplexity",
]


def perplexity(loss: float) -> float:
    """exp(loss), or inf when that overflows."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def per_class_scores(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 of each class ``(classes,)`` from a confusion matrix (rows: true, columns:
    predicted); 0 where a class was never predicted or never present."""
    hits = np.diag(confusion).astype(np.float64)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    return precision, recall, f1


def classification_metrics(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> dict[str, Any]:
    """Accuracy, macro precision, recall and F1, and the confusion matrix (rows: true, columns: predicted)."""
    predictions = np.asarray(predictions, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    confusion = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    precision, recall, f1 = per_class_scores(confusion)
    total = confusion.sum()
    return {
        "accuracy": float(np.trace(confusion) / total) if total else math.nan,
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "confusion_matrix": confusion.tolist(),
    }


def lower_is_better(metric: str) -> bool:
    """True for metrics where a smaller value is the better one: losses and perplexities."""
    return metric.endswith(("loss", "perplexity"))


def improves(metric: str, value: float, best: float | None, min_delta: float = 0.0) -> bool:
    """True when ``value`` of ``metric`` beats ``best`` by more than ``min_delta`` (None: nothing to beat yet)."""
    if best is None:
        return True
    return value < best - min_delta if lower_is_better(metric) else value > best + min_delta


def finite_or_none(value: Any) -> Any:
    """``value``, or None where it is a float NaN or infinity (JSON has neither; a view shows None as a dash)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class ParameterSplit:
    """A model's weights by where they run: looked up (embeddings), at every token (body), in the output head."""

    embedding: int  # nn.Embedding tables: a lookup, no multiply
    body: int  # every other weight the model applies at every position
    head: int  # the output head's weights (a tied decoder counted here, where it multiplies)
    layers: int
    hidden: int


def parameter_split(model: Any) -> ParameterSplit:
    """Count ``model``'s parameters as embedding, body and head (the modules outside ``base_model``, and a pooler).

    A pooler and a classifier run once per sequence and an output head where the task runs it,
    so they are kept apart from the body, which runs at every position.
    """
    import torch

    base = getattr(model, "base_model", model)
    # A bare encoder is its own base model: it has no head.
    head_modules = [child for child in model.children() if child is not base] if base is not model else []
    pooler = getattr(base, "pooler", None)
    if isinstance(pooler, torch.nn.Module):
        head_modules.append(pooler)
    head_ids = {id(p) for m in head_modules for p in m.parameters()}
    embedding_ids = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    unique = {id(p): p.numel() for p in model.parameters()}
    config = getattr(model, "config", None)
    return ParameterSplit(
        embedding=sum(n for i, n in unique.items() if i in embedding_ids and i not in head_ids),
        body=sum(n for i, n in unique.items() if i not in embedding_ids and i not in head_ids),
        head=sum(p.numel() for m in head_modules for p in m.parameters()),
        layers=int(getattr(config, "num_hidden_layers", 0) or 0),
        hidden=int(getattr(config, "hidden_size", 0) or 0),
    )


def flops_per_token(model: Any, seq_len: int, head_share: float = 1.0) -> float:
    """Training FLOPs actually done per token (PaLM, appendix B), forward and backward.

    6 x the body's weights (every position), 6 x the head's weights times ``head_share`` (the
    share of positions where the head runs: the masked ones for a sparse masked-LM head, one per
    sequence for a classifier), and 12 x layers x hidden x ``seq_len`` for the attention scores
    and values. Embedding tables are looked up, not multiplied: they count nothing.
    """
    split = parameter_split(model)
    return 6.0 * split.body + 6.0 * head_share * split.head + 12.0 * split.layers * split.hidden * seq_len


# Dense peak FLOP/s of known accelerators, in the precision named (vendor data sheets).
_GPU_PEAKS = {
    "H200": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12},
    "H100": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12},
    "A100": {"bf16": 312e12, "fp16": 312e12, "fp32": 19.5e12},
    "L40S": {"bf16": 362e12, "fp16": 362e12, "fp32": 91.6e12},
    "L4": {"bf16": 121e12, "fp16": 121e12, "fp32": 30.3e12},
    "A10": {"bf16": 125e12, "fp16": 125e12, "fp32": 31.2e12},
    "V100": {"fp16": 125e12, "fp32": 15.7e12},
    "T4": {"fp16": 65e12, "fp32": 8.1e12},
    "RTX 4090": {"bf16": 165e12, "fp16": 165e12, "fp32": 82.6e12},
    "RTX 3090": {"bf16": 71e12, "fp16": 71e12, "fp32": 35.6e12},
}


def _precision_key(precision: str) -> str:
    return precision if precision in ("bf16", "fp16") else "fp32"


def peak_flops(device: Any, precision: str) -> float | None:
    """The device's peak FLOP/s: a table for known GPUs; on CPU, a measured matmul peak (cached)."""
    import torch

    device = torch.device(device)
    key = _precision_key(precision)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for gpu, peaks in _GPU_PEAKS.items():
            if gpu in name:
                return peaks.get(key)
        return None
    if device.type == "cpu":
        return _measured_cpu_peak(key)
    return None


def peak_basis(device: Any, precision: str) -> str:
    """What ``peak_flops`` measures MFU against, in words for a label: "measured fp32 matmul peak" on a CPU.

    On a CPU the peak is a 1024 x 1024 matmul timed on the spot, not a data sheet's figure: an
    MFU there is a share of what this machine's BLAS reaches, and reads higher than on a GPU.
    """
    import torch

    device = torch.device(device)
    key = _precision_key(precision)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        known = next((gpu for gpu in _GPU_PEAKS if gpu in name), None)
        return f"{known} {key} data-sheet peak" if known else ""
    if device.type == "cpu":
        return f"measured {key} matmul peak"
    return ""


@functools.lru_cache(maxsize=4)
def _measured_cpu_peak(precision: str) -> float:
    """Best of a few square matmuls: what this CPU's BLAS reaches, as a practical peak."""
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    n = 1024
    # its own generator: drawing from the global one mid-run would change the masks a seeded run draws
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, dtype=dtype, generator=generator)
    b = torch.randn(n, n, dtype=dtype, generator=generator)
    torch.mm(a, b)  # warm-up: thread pool and kernel selection
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best
