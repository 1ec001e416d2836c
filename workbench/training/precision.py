"""Choosing the device and mixed precision, and building the Accelerate ``Accelerator`` for them."""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from accelerate import Accelerator

    from workbench.training.config import Precision, ResolvedPrecision

__all__ = ["cpu_has_bf16", "drop_autocast_forward", "make_accelerator", "resolve_precision"]

# Measured on a 2-core AVX2 CPU without native bf16: a 1024 x 1024 matmul in bf16 against fp32.
_SLOW_BF16_GFLOPS, _FP32_GFLOPS = 1.0, 173.0


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX), where bf16 autocast pays off."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_precision(precision: Precision, device: torch.device) -> ResolvedPrecision:
    """The precision a run will use: "auto" becomes bf16, fp16 or fp32 by what the device has.

    Asking for bf16 on a CPU without native bf16 keeps bf16 (the caller asked) with a warning:
    there it is emulated and runs a matmul about 170 times slower than fp32.
    """
    if precision != "auto":
        if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
            slower = round(_FP32_GFLOPS / _SLOW_BF16_GFLOPS, -1)
            warnings.warn(
                f"precision='bf16' on this CPU (no AVX512-BF16 or AMX) trains much slower than fp32, about "
                f"{slower:.0f}x on a measured matrix multiply ({_SLOW_BF16_GFLOPS:.1f} against "
                f"{_FP32_GFLOPS:.0f} GFLOP/s); precision='auto' picks fp32 here.",
                UserWarning,
                stacklevel=2,
            )
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_has_bf16() else "fp32"
    return "fp32"


def make_accelerator(precision: Precision, device: str | None) -> tuple[Accelerator, ResolvedPrecision]:
    """An ``Accelerator`` for this run, and the precision it resolved to."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState

    cpu = device == "cpu" or (device is None and not torch.cuda.is_available())
    target = torch.device("cpu") if cpu else torch.device(device or "cuda")
    resolved = resolve_precision(precision, target)
    mixed = {"bf16": "bf16", "fp16": "fp16", "fp32": "no"}[resolved]
    state = AcceleratorState._shared_state
    # Accelerate keeps one process-wide state and refuses a second precision. In a single
    # process (a notebook comparing runs) it is safe to start afresh; several processes keep theirs.
    if state and state.get("_mixed_precision") not in (None, mixed) and PartialState().num_processes == 1:
        AcceleratorState._reset_state()
    return Accelerator(mixed_precision=mixed, cpu=cpu), resolved


def drop_autocast_forward(model: Any) -> None:
    """Undo Accelerate's patch of ``model.forward`` for mixed precision.

    ``prepare`` wraps the forward in autocast for good: every later call — an attention view,
    a probe, an attribution after training, in the same kernel — would run in bf16 or fp16
    without a word. The loop autocasts its own training and evaluation calls, so the model
    itself keeps its plain forward.
    """
    inner = getattr(model, "module", model)  # inside DistributedDataParallel where there is one
    original = inner.__dict__.pop("_original_forward", None)
    if original is not None:
        inner.forward = original
