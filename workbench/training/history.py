"""``TrainingHistory``: what a run logged, one record per log step, evaluation and probe snapshot."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workbench.errors import TrainingError

__all__ = ["METRICS_FILE", "TrainingHistory"]

METRICS_FILE = "metrics.jsonl"  # what a run with an output_dir logs: one JSON record per line


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

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> TrainingHistory:
        """The records of a run folder's ``metrics.jsonl`` (or of that file itself).

        A resumed run appends to the file again from its checkpoint's step: the later records replace the
        earlier ones from that step on. A last line cut short by a crash is skipped. Raises ``TrainingError``
        when there is no such file or another line is not JSON.
        """
        path = Path(folder).expanduser()
        file = path if path.is_file() else path / METRICS_FILE
        if not file.is_file():
            where = "does not exist" if not path.exists() else f"holds no {METRICS_FILE}"
            raise TrainingError(
                f"The run folder {path} {where}; give the output_dir of a run trained with "
                f"TrainConfig(output_dir=...), where the Trainer writes {METRICS_FILE}."
            )
        lines = file.read_text(encoding="utf-8").splitlines()
        records: list[dict[str, Any]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):  # a run killed mid-write leaves its last line cut short
                    break
                raise TrainingError(
                    f"Line {number} of {file} is not JSON; the file is damaged: remove that line."
                ) from None
            if isinstance(record, dict) and "kind" in record and "step" in record:
                records.append(record)
        return cls(_latest_course(records))

    def losses(self) -> list[float]:
        return [r["loss"] for r in self.train]

    def loss_parts(self) -> list[str]:
        """The parts of a loss of several parts that the run logs beside ``loss`` (ELECTRA: ``generator_loss`` and
        ``discriminator_loss``), as its last training record names them; ``[]`` for a loss of one part."""
        train = self.train
        last = train[-1] if train else {}
        return [key for key in last if key.endswith("_loss") and key != "smoothed_loss"]

    def to_dict(self) -> dict[str, Any]:
        return {"records": list(self.records)}

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        last = self.train[-1]["loss"] if self.train else math.nan
        return f"TrainingHistory({len(self.train)} train logs, {len(self.eval)} evaluations, last loss {last:.4f})"


def _latest_course(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records with those a resumed run wrote again dropped: where a kind's step goes back to ``s``, the
    run restarted from a checkpoint before ``s``, and every earlier record from ``s`` on is replaced."""
    kept: list[dict[str, Any]] = []
    last: dict[str, int] = {}  # kind -> the step of its latest record
    for record in records:
        kind, step = record["kind"], int(record["step"])
        if step <= last.get(kind, -1):
            kept = [r for r in kept if int(r["step"]) < step]
            last = {k: s for k, s in last.items() if s < step}
        kept.append(record)
        last[kind] = step
    return kept
