"""``ProbeLayersResult``: what ``probe_layers`` found, per checkpoint and row, as data a view can draw."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.errors import ProbeError

__all__ = ["ProbeLayersResult"]


@dataclass
class ProbeLayersResult:
    """Held-out accuracy of a linear probe on every row (embeddings, then each layer) of every checkpoint.

    ``accuracy`` and ``control_accuracy`` are ``(checkpoints, rows)``; the control accuracy is the same
    probe, on the same split, fitted to control labels. ``majority`` is the held-out accuracy of always
    guessing the training split's most common class.
    """

    model: str
    data: str
    pooling: str
    control: str
    layer_names: list[str]
    checkpoints: list[str]
    accuracy: np.ndarray  # (checkpoints, rows)
    control_accuracy: np.ndarray  # (checkpoints, rows)
    majority: float
    train_examples: int
    test_examples: int
    label_names: list[str]

    @property
    def selectivity(self) -> np.ndarray:
        """``accuracy - control_accuracy``, ``(checkpoints, rows)``: what the probe reads beyond memorising."""
        difference: np.ndarray = self.accuracy - self.control_accuracy
        return difference

    def best_layer(self, checkpoint: int = -1) -> int:
        """The row with the highest accuracy at ``checkpoint`` (default: the last); the earliest on a tie.

        Raises ``ProbeError`` when ``checkpoint`` is not an index of ``checkpoints``.
        """
        count = len(self.checkpoints)
        if not isinstance(checkpoint, (int, np.integer)) or isinstance(checkpoint, bool):
            raise ProbeError(f"checkpoint must be a whole number (an index of checkpoints), got {checkpoint!r}.")
        if not -count <= int(checkpoint) < count:
            raise ProbeError(
                f"Checkpoint {checkpoint} is out of range: this result holds {count} (0 to {count - 1}, or -1)."
            )
        return int(np.argmax(self.accuracy[int(checkpoint)]))

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-safe lists and numbers (accuracies rounded to 4 places), with the selectivity."""
        return {
            "model": self.model,
            "data": self.data,
            "pooling": self.pooling,
            "control": self.control,
            "layer_names": list(self.layer_names),
            "checkpoints": list(self.checkpoints),
            "accuracy": np.round(self.accuracy, 4).tolist(),
            "control_accuracy": np.round(self.control_accuracy, 4).tolist(),
            "selectivity": np.round(self.selectivity, 4).tolist(),
            "majority": round(float(self.majority), 4),
            "train_examples": self.train_examples,
            "test_examples": self.test_examples,
            "label_names": list(self.label_names),
        }

    def __repr__(self) -> str:
        best = self.best_layer()
        where = f" at {self.checkpoints[-1]}" if len(self.checkpoints) > 1 else ""
        return (
            f"ProbeLayersResult({self.model} on {self.data}, {self.pooling} pooling, {len(self.layer_names)} rows x "
            f"{len(self.checkpoints)} checkpoint(s); best{where}: {self.layer_names[best]}, accuracy "
            f"{self.accuracy[-1, best]:.3f}, selectivity {self.selectivity[-1, best]:.3f} ({self.control} control), "
            f"majority {self.majority:.3f})"
        )
