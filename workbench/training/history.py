"""``TrainingHistory``: what a run logged, one record per log step, evaluation and probe snapshot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["TrainingHistory"]


class TrainingHistory:
    """What a run logged: a record per log step (``train``) and per evaluation (``eval``)."""

    def __init__(self, records: Sequence[dict[str, Any]] = ()) -> None:
        self.records: list[dict[str, Any]] = list(records)

    @property
    def train(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == "train"]

    @property
    def eval(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == "eval"]

    @property
    def probes(self) -> list[dict[str, Any]]:
        """Records of a ``ProbeRecorder``: what the probe sentences predicted at each step."""
        return [r for r in self.records if r["kind"] == "probe"]

    def losses(self) -> list[float]:
        return [r["loss"] for r in self.train]

    def to_dict(self) -> dict[str, Any]:
        return {"records": list(self.records)}

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        last = self.train[-1]["loss"] if self.train else math.nan
        return f"TrainingHistory({len(self.train)} train logs, {len(self.eval)} evaluations, last loss {last:.4f})"
