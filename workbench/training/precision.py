"""Choosing the device and mixed precision, and building the Accelerate ``Accelerator`` for them."""

from __future__ import annotations

import functools
from typing import Any

import torch

__all__ = ["cpu_has_bf16", "make_accelerator", "resolve_precision"]


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX), where bf16 autocast pays off."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision a run will use: "auto" becomes bf16, fp16 or fp32 by what the device has."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_has_bf16() else "fp32"
    return "fp32"


def make_accelerator(precision: str, device: str | None) -> tuple[Any, str]:
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
