"""What a benchmark reports about the machine it ran on: the CPU, and whether it has native bf16."""

from __future__ import annotations

import contextlib
from pathlib import Path


def cpu_flags() -> dict:
    """``{"cpu": model name, "native_bf16": AVX512-BF16 or AMX present}`` from /proc/cpuinfo ("?" elsewhere)."""
    flags = ""
    with contextlib.suppress(OSError):
        flags = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("model name")), "?")
    return {"cpu": model, "native_bf16": "avx512_bf16" in flags or "amx_bf16" in flags}
