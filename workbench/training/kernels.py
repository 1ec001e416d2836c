"""The attention kernel a run trains with, and switching a model to it and back."""

from __future__ import annotations

from typing import Any

from workbench.training.config import TrainConfig

__all__ = ["switch_attention", "training_attention"]


def training_attention(config: TrainConfig, device_type: str, precision: str) -> str | None:
    """The kernel to train with ("auto" resolved for this device and precision), or None to keep the model's own."""
    if config.attention != "auto":
        return config.attention
    # Measured on this project's 2-core AVX512-BF16 CPU (tiny-bert, 32 x 128 tokens, one step):
    # under bf16 autocast, eager attention 351 ms against SDPA 443 ms (the CPU flash kernel's
    # backward dominates); in fp32 SDPA wins (584 against 709 ms); at 512 tokens they tie.
    short = config.block_size <= 256 and config.max_length <= 256
    return "eager" if device_type == "cpu" and precision == "bf16" and short else None


def switch_attention(model: Any, wanted: str | None) -> str | None:
    """Switch ``model`` to the ``wanted`` kernel; return the one to switch back to (None: nothing changed)."""
    current = getattr(model.config, "_attn_implementation", None)
    if wanted is None or current == wanted or not hasattr(model, "set_attn_implementation"):
        return None
    try:
        model.set_attn_implementation(wanted)
    except (ValueError, ImportError):  # a model without that kernel keeps its own
        return None
    return current
