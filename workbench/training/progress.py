"""What a log line reports: the steps since the last log, the smoothed loss, tokens per second and MFU."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from workbench.training.metrics import peak_basis, peak_flops

__all__ = ["LogWindow", "Speedometer", "smoothed"]

SMOOTHING = 0.9  # weight of the past in the smoothed loss


@dataclass
class LogWindow:
    """What the steps since the last log add up to; read back (one host sync) only when a log is due."""

    device: torch.device
    losses: list[torch.Tensor] = field(default_factory=list)  # each step's loss, still on the device
    tokens: int = 0
    start: float = field(default_factory=time.perf_counter)
    grad_norm: torch.Tensor = field(init=False)
    first_bad: torch.Tensor = field(init=False)  # the first step whose loss was not finite, -1 while none

    def __post_init__(self) -> None:
        self.grad_norm = torch.zeros((), device=self.device)
        self.first_bad = torch.full((), -1, dtype=torch.long, device=self.device)

    def restart(self, now: float | None = None) -> None:
        """Start counting afresh (after a log, or after a pause that should not count as time spent)."""
        self.losses, self.tokens, self.start = [], 0, time.perf_counter() if now is None else now


def smoothed(previous: float, values: list[float]) -> float:
    """The exponential moving average of the step losses, carried on from ``previous`` (NaN: none yet)."""
    for v in values:
        previous = v if math.isnan(previous) else SMOOTHING * previous + (1 - SMOOTHING) * v
    return previous


class Speedometer:
    """Model FLOPs utilisation: the FLOPs done per second over the device's peak (measured lazily on a CPU)."""

    def __init__(self, flops_per_token: float, device: torch.device, precision: str, processes: int) -> None:
        self.flops_per_token = flops_per_token
        self.device, self.precision, self.processes = device, precision, processes
        self._peak: float | None = None
        self.basis = ""  # what the peak is, for a label: "measured fp32 matmul peak"

    def mfu(self, tokens_per_second: float) -> float:
        """The share of the peak (every process's together) that ``tokens_per_second`` uses; NaN without a peak."""
        if self._peak is None:
            self._peak = (peak_flops(self.device, self.precision) or 0.0) * self.processes
            self.basis = peak_basis(self.device, self.precision)
        return tokens_per_second * self.flops_per_token / self._peak if self._peak else math.nan
