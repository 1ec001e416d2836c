"""Evaluation metrics and model FLOPs utilisation (MFU)."""

from __future__ import annotations

import functools
import math
import time
from typing import Any

import numpy as np

__all__ = ["classification_metrics", "flops_per_token", "peak_flops", "perplexity"]


def perplexity(loss: float) -> float:
    """exp(loss), or inf when that overflows."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def classification_metrics(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> dict:
    """Accuracy, macro precision, recall and F1, and the confusion matrix (rows: true, columns: predicted)."""
    predictions = np.asarray(predictions, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    confusion = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    true_positive = np.diag(confusion).astype(float)
    predicted = confusion.sum(axis=0).astype(float)
    actual = confusion.sum(axis=1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_positive / predicted, 0.0)
        recall = np.where(actual > 0, true_positive / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    total = confusion.sum()
    return {
        "accuracy": float(true_positive.sum() / total) if total else math.nan,
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "confusion_matrix": confusion.tolist(),
    }


def flops_per_token(config: Any, num_parameters: int, seq_len: int) -> float:
    """Training FLOPs per token: 6·N for the weights plus 12·layers·hidden·seq_len for attention (PaLM, appendix B)."""
    layers = getattr(config, "num_hidden_layers", 0) or 0
    hidden = getattr(config, "hidden_size", 0) or 0
    return 6.0 * num_parameters + 12.0 * layers * hidden * seq_len


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


def peak_flops(device: Any, precision: str) -> float | None:
    """The device's peak FLOP/s: a table for known GPUs; on CPU, a measured matmul peak (cached)."""
    import torch

    device = torch.device(device)
    key = "fp32" if precision not in ("bf16", "fp16") else precision
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for gpu, peaks in _GPU_PEAKS.items():
            if gpu in name:
                return peaks.get(key)
        return None
    if device.type == "cpu":
        return _measured_cpu_peak(key)
    return None


@functools.lru_cache(maxsize=4)
def _measured_cpu_peak(precision: str) -> float:
    """Best of a few square matmuls: what this CPU's BLAS reaches, as a practical peak."""
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    n = 1024
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)  # warm-up: thread pool and kernel selection
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best
