"""``TunedLens``: one affine translator per layer, trained so that each layer read through the model's own
final norm and head predicts what the model finally predicts (Belrose et al. 2023).

Row ``r`` of a lens is the hidden state after layer ``r`` (row 0: the embeddings); rows 0 to L-1 have a
translator, ``h + A_r h + b_r``, which starts as the identity (A and b zero), so an untrained lens is
exactly the logit lens. The last row is the model's own output and is never translated. The Trainer's
``"tuned-lens"`` task trains one; it saves as safetensors with the fingerprint of the model it reads,
and refuses any other model.

Example::

    trainer = Trainer(bundle, "tuned-lens", "shakespeare", config=TrainConfig(max_steps=200, output_dir="runs/lens"))
    trainer.fit()
    lens = trainer.task.lens                      # or load_tuned_lens("runs/lens", bundle)
    lens.save("models/smollm2-lens")              # models/smollm2-lens/tuned_lens.safetensors
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open

from workbench.errors import ProbeError
from workbench.models.files import write_safetensors
from workbench.models.identity import fingerprint_mismatch, model_fingerprint
from workbench.training.checkpoint import run_checkpoints

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["LENS_FILE", "TunedLens", "load_tuned_lens"]

LENS_FILE = "tuned_lens.safetensors"
_FORMAT, _VERSION = "workbench-tuned-lens", "1"


class TunedLens(torch.nn.Module):
    """Affine translators for rows 0..rows-1 of a model's hidden states; identity when freshly made."""

    def __init__(self, rows: int, hidden: int, *, model: str = "", fingerprint: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.rows, self.hidden, self.model = rows, hidden, model
        self.fingerprint: dict[str, Any] = dict(fingerprint or {})
        self.trained_steps = 0
        # Each translator is h + h A^T + b: learning the change from the identity keeps the start exact.
        self.weight = torch.nn.Parameter(torch.zeros(rows, hidden, hidden))  # (rows, out, in)
        self.bias = torch.nn.Parameter(torch.zeros(rows, hidden))  # (rows, hidden)

    @classmethod
    def for_model(cls, bundle: ModelBundle) -> TunedLens:
        """A fresh lens (identity translators) for ``bundle``'s language model."""
        config = bundle.model.config
        rows = int(config.num_hidden_layers)
        lens = cls(rows, int(config.hidden_size), model=bundle.name, fingerprint=model_fingerprint(bundle.model))
        return lens.to(bundle.device)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """Translate every row at once: ``states`` is ``(rows, n, hidden)``, one slice per translator."""
        if states.shape[0] != self.rows:
            raise ProbeError(f"The lens translates {self.rows} rows; got states for {states.shape[0]}.")
        weight, bias = self.weight.to(states.dtype), self.bias.to(states.dtype)
        return states + torch.baddbmm(bias[:, None, :], states, weight.transpose(1, 2))  # (rows, n, hidden)

    def translate(self, row: int, states: torch.Tensor) -> torch.Tensor:
        """Row ``row``'s hidden states ``(..., hidden)`` translated; the output row (``rows``) is returned unchanged.

        Raises ``ProbeError`` for a row that is not one of the model's (0 to ``rows``)."""
        if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row <= self.rows:
            raise ProbeError(
                f"Lens row {row!r} is out of range: this lens reads rows 0 (the embeddings) to {self.rows} "
                "(the model's output)."
            )
        if row == self.rows:
            return states
        weight, bias = self.weight[row].to(states.dtype), self.bias[row].to(states.dtype)
        return states + torch.nn.functional.linear(states, weight, bias)

    @property
    def label(self) -> str:
        """How views name this lens: "tuned lens (step 200)", or "tuned lens (untrained)"."""
        return f"tuned lens (step {self.trained_steps})" if self.trained_steps else "tuned lens (untrained)"

    def mismatch(self, bundle: ModelBundle) -> str | None:
        """None when this lens reads ``bundle``'s model; otherwise a sentence saying why it does not."""
        layers = int(getattr(bundle.model.config, "num_hidden_layers", 0) or 0)
        if layers != self.rows:
            return (
                f"This tuned lens has {self.rows} translators (a model of {self.rows} layers) but {bundle.name} has "
                f"{layers} layers; train a lens for {bundle.name} (Trainer(bundle, 'tuned-lens', corpus))."
            )
        differs = fingerprint_mismatch(self.fingerprint, bundle.model)
        if differs:
            return (
                f"This tuned lens was trained for {self.model or 'another model'}{differs}; "
                f"train a lens for {bundle.name} (Trainer(bundle, 'tuned-lens', corpus))."
            )
        return None

    @staticmethod
    def required(lens: object, bundle: ModelBundle) -> TunedLens:
        """``lens`` when it is a tuned lens trained for ``bundle``'s model; a ``ProbeError`` sentence otherwise."""
        if not isinstance(lens, TunedLens):
            raise ProbeError(
                f"lens must be a TunedLens (from load_tuned_lens or a 'tuned-lens' run), not {type(lens).__name__}; "
                "leave it out for the logit lens."
            )
        lens.check(bundle)
        return lens

    def check(self, bundle: ModelBundle) -> None:
        """Raise ``ProbeError`` (one sentence) unless this lens reads ``bundle``'s model."""
        problem = self.mismatch(bundle)
        if problem:
            raise ProbeError(problem)

    def save(self, destination: str | os.PathLike[str]) -> Path:
        """Write the lens as safetensors (``destination`` is a file, or a folder that gets ``tuned_lens.safetensors``,
        such as the model's own folder); atomically. Returns the file's path."""
        path = Path(destination)
        if path.suffix != ".safetensors":
            path.mkdir(parents=True, exist_ok=True)
            path = path / LENS_FILE
        metadata = {
            "format": _FORMAT,
            "version": _VERSION,
            "model": self.model,
            "trained_steps": str(self.trained_steps),
            "fingerprint": json.dumps(self.fingerprint),
        }
        tensors = {"weight": self.weight.detach().float().cpu(), "bias": self.bias.detach().float().cpu()}
        return write_safetensors(path, tensors, metadata)

    def __repr__(self) -> str:
        return (
            f"TunedLens({self.model or 'unnamed model'}, {self.rows} translators of width {self.hidden}, {self.label})"
        )


def _lens_file(source: Path) -> Path:
    """The lens file behind ``source``: itself, a folder's tuned_lens.safetensors, or a run's latest checkpoint's."""
    if source.is_file():
        return source
    if (source / LENS_FILE).is_file():
        return source / LENS_FILE
    found = [c for c in run_checkpoints(source) if (c / LENS_FILE).is_file()]
    if found:
        return found[-1] / LENS_FILE
    raise ProbeError(
        f"No tuned lens at {source}: give a {LENS_FILE} file, a folder holding one, or the output_dir of a "
        "'tuned-lens' training run."
    )


def load_tuned_lens(source: str | os.PathLike[str] | TunedLens, bundle: ModelBundle | None = None) -> TunedLens:
    """Load a lens saved by ``TunedLens.save`` or by a ``"tuned-lens"`` run (a file, a folder, a checkpoint or a
    run folder: its latest checkpoint). With ``bundle`` it is checked against that model and moved to its device.

    Raises ``ProbeError`` with one sentence when nothing is there, the file is not a tuned lens, or it was
    trained for another model (another shape, number of layers, or weights).
    """
    if isinstance(source, TunedLens):
        lens = source
    else:
        if not isinstance(source, (str, os.PathLike)):
            raise TypeError(f"A tuned lens is loaded from a path or a TunedLens, not {type(source).__name__}.")
        path = _lens_file(Path(source))
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
                if metadata.get("format") != _FORMAT:
                    raise ProbeError(f"{path} is not a tuned lens (saved by TunedLens.save or a 'tuned-lens' run).")
                weight, bias = f.get_tensor("weight"), f.get_tensor("bias")
        except (SafetensorError, OSError, KeyError) as e:
            raise ProbeError(f"{path} could not be read as a tuned lens ({e}); save the lens again.") from None
        if weight.dim() != 3 or weight.shape[1] != weight.shape[2] or tuple(bias.shape) != tuple(weight.shape[:2]):
            raise ProbeError(f"{path} holds translators of an impossible shape {tuple(weight.shape)}; save it again.")
        lens = TunedLens(
            int(weight.shape[0]),
            int(weight.shape[1]),
            model=metadata.get("model", ""),
            fingerprint=json.loads(metadata.get("fingerprint", "{}")),
        )
        with torch.no_grad():
            lens.weight.copy_(weight)
            lens.bias.copy_(bias)
        lens.trained_steps = int(metadata.get("trained_steps", "0") or 0)
        lens.requires_grad_(False)  # loaded to be read; a run that trains it on makes its own
    if bundle is not None:
        lens.check(bundle)
        lens = lens.to(bundle.device)
    return lens.eval()
