"""Steering: a direction in the residual stream that moves what a model writes.

``steering_vector`` takes the difference of the mean residual stream leaving one layer between
prompts that show a property and prompts that show its opposite (activation addition, Turner et
al. 2023, in its mean-difference form). ``generate(..., steer=(vector, coefficient))`` adds
``coefficient × vector`` to the stream leaving that layer at every position, prompt and generated
tokens alike. A vector keeps a fingerprint of the model it came from and refuses any other model.

Example::

    vector = steering_vector(bundle, ["I love this film"], ["I hate this film"], layer=12)
    vector.save("love.safetensors")
    out = generate(bundle, "I think the movie was", steer=(vector, 4.0))
    print(out)                                  # the steered text beside the plain one, same seed
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors import safe_open

from workbench.errors import ProbeError
from workbench.explain.activations import record
from workbench.explain.budget import require
from workbench.explain.footprint import ModelShape
from workbench.explain.inputs import check_text, encode
from workbench.explain.sites import Site, Writer, site_map
from workbench.models.files import write_safetensors
from workbench.models.identity import fingerprint_mismatch, model_fingerprint

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = [
    "SteeringVector",
    "fingerprint_mismatch",
    "load_steering_vector",
    "model_fingerprint",
    "steering_vector",
    "steering_writer",
]

FORMAT = "workbench-steering-vector"
VERSION = "1"


@dataclass
class SteeringVector:
    """A direction in the residual stream leaving ``layer``: mean(positive) - mean(negative), float32 ``(hidden,)``."""

    model: str  # the name of the model it was made from
    fingerprint: dict[str, Any]  # see model_fingerprint: refuses any other model
    layer: int
    vector: np.ndarray  # (hidden,) float32
    positive: list[str] = field(default_factory=list)
    negative: list[str] = field(default_factory=list)
    stream_norm: float = 0.0  # the residual stream's mean norm at this layer over the prompts

    @property
    def norm(self) -> float:
        """The vector's length; ``coefficient × norm`` against ``stream_norm`` says how hard a steer pushes."""
        return float(np.linalg.norm(self.vector))

    def check(self, bundle: ModelBundle) -> None:
        """Raise ``ProbeError`` with a sentence unless this vector fits ``bundle``'s model and its layers."""
        different = fingerprint_mismatch(self.fingerprint, bundle.model)
        if different is not None:
            raise ProbeError(
                f"This steering vector was made from {self.model}{different}; make one from this model with "
                "steering_vector(bundle, positive, negative, layer)."
            )
        found = site_map(bundle.model)
        if not 0 <= self.layer < found.num_layers:
            raise ProbeError(
                f"The steering vector's layer {self.layer} is out of range: {bundle.name} has layers "
                f"0..{found.num_layers - 1}."
            )
        if self.vector.shape != (found.hidden,):
            raise ProbeError(
                f"The steering vector has shape {tuple(self.vector.shape)} but {bundle.name}'s residual stream "
                f"is ({found.hidden},) per token; make one with steering_vector."
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "fingerprint": self.fingerprint,
            "layer": self.layer,
            "vector": np.round(self.vector, 6).tolist(),
            "positive": self.positive,
            "negative": self.negative,
            "norm": self.norm,
            "stream_norm": self.stream_norm,
        }

    def save(self, path: str | Path) -> Path:
        """Write the vector (safetensors) with its metadata in the file's header, atomically; returns the path."""
        path = Path(path)
        meta = {k: v for k, v in self.to_dict().items() if k not in ("vector", "norm")}
        vector = torch.from_numpy(np.ascontiguousarray(self.vector, dtype=np.float32))
        metadata = {"format": FORMAT, "version": VERSION, "workbench": json.dumps(meta)}
        return write_safetensors(path, {"vector": vector}, metadata)

    @classmethod
    def load(cls, path: str | Path) -> SteeringVector:
        """A vector written by :meth:`save`; ``ProbeError`` with a sentence for a missing or foreign file."""
        path = Path(path)
        if not path.is_file():
            raise ProbeError(f"There is no steering vector at {path}; save one with vector.save(path) first.")
        try:
            with safe_open(str(path), framework="np") as file:
                header = file.metadata() or {}
                vector = file.get_tensor("vector") if "vector" in file.keys() else None  # noqa: SIM118
        except Exception:  # safetensors raises its own error types for a file that is not one of its files
            header, vector = {}, None
        if header.get("format") != FORMAT or vector is None:
            raise ProbeError(
                f"{path} is not a steering vector saved by the workbench; make one with steering_vector and save it."
            )
        meta = json.loads(header["workbench"])
        return cls(
            model=meta["model"],
            fingerprint=meta["fingerprint"],
            layer=int(meta["layer"]),
            vector=vector.astype(np.float32),
            positive=list(meta.get("positive", [])),
            negative=list(meta.get("negative", [])),
            stream_norm=float(meta.get("stream_norm", 0.0)),
        )

    def __repr__(self) -> str:
        def shown(prompts: list[str]) -> str:
            first = repr(prompts[0][:30]) if prompts else "-"
            return first + (f" and {len(prompts) - 1} more" if len(prompts) > 1 else "")

        return (
            f"SteeringVector({self.model}, layer {self.layer}, norm {self.norm:.3g} against a stream of "
            f"{self.stream_norm:.3g}; + {shown(self.positive)} - {shown(self.negative)})"
        )


def load_steering_vector(path: str | Path) -> SteeringVector:
    """:meth:`SteeringVector.load`: a vector written by ``vector.save(path)``."""
    return SteeringVector.load(path)


def _kind_of(value: object) -> str:
    return f"an empty {type(value).__name__}" if isinstance(value, (list, tuple)) else type(value).__name__


def _prompts(value: object, name: str) -> list[str]:
    prompts = [value] if isinstance(value, str) else value
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise ProbeError(f"The {name} prompts are a text or a non-empty list of texts; got {_kind_of(value)}.")
    return [check_text(p, f"A {name} prompt") for p in prompts]


def steering_vector(
    bundle: ModelBundle,
    positive: str | list[str],
    negative: str | list[str],
    layer: int,
    *,
    memory_mb: int | None = None,
) -> SteeringVector:
    """The mean residual stream leaving ``layer`` over the ``positive`` prompts minus that over the ``negative``
    ones (each prompt's mean over its positions, then the mean over prompts: every prompt counts the same).

    Raises ``ProbeError`` with a sentence for empty prompts, a layer out of range or a model without sites;
    ``MemoryBudgetError`` when the longest prompt's forward would not fit the budget.
    """
    positive, negative = _prompts(positive, "positive"), _prompts(negative, "negative")
    if not isinstance(layer, int) or isinstance(layer, bool):
        raise ProbeError(f"layer must be a layer index (an integer), got {layer!r}.")
    site = site_map(bundle.model).check(Site("resid_post", layer))
    longest = max(encode(bundle, p)["input_ids"].shape[1] for p in positive + negative)
    shape = ModelShape.of(bundle.model)
    require(
        shape.layer_bytes(longest) + shape.logits_bytes(longest),
        memory_mb,
        f"a steering vector from prompts of up to {longest:,} tokens of {bundle.name}",
        "shorter prompts",
    )

    def means(prompts: list[str]) -> tuple[np.ndarray, list[float]]:
        streams = [record(bundle, p, site)[site].astype(np.float64) for p in prompts]  # each (positions, hidden)
        norms = [float(np.linalg.norm(s, axis=-1).mean()) for s in streams]
        return np.mean([s.mean(0) for s in streams], axis=0), norms  # (hidden,)

    (plus, plus_norms), (minus, minus_norms) = means(positive), means(negative)
    return SteeringVector(
        model=bundle.name,
        fingerprint=model_fingerprint(bundle.model),
        layer=layer,
        vector=(plus - minus).astype(np.float32),
        positive=positive,
        negative=negative,
        stream_norm=float(np.mean(plus_norms + minus_norms)),
    )


def steering_writer(bundle: ModelBundle, steer: object) -> tuple[Site, Writer, dict[str, Any]]:
    """For ``steer=(vector, coefficient)``: the site (``resid_post`` of the vector's layer), a writer adding
    ``coefficient × vector`` at every position, and a description for results.

    Raises ``ProbeError`` with a sentence for anything but a (SteeringVector, finite number) pair, or a
    vector made from another model or for a layer this model lacks.
    """
    if not isinstance(steer, (tuple, list)) or len(steer) != 2:
        shown = type(steer).__name__ + (f" of {len(steer)} items" if isinstance(steer, (tuple, list)) else "")
        raise ProbeError(f"steer is a pair (steering vector, coefficient), e.g. steer=(vector, 4.0); got a {shown}.")
    vector, coefficient = steer
    if not isinstance(vector, SteeringVector):
        raise ProbeError(
            "steer's first item must be a SteeringVector (from steering_vector or load_steering_vector), "
            f"got {type(vector).__name__}."
        )
    if (
        isinstance(coefficient, bool)
        or not isinstance(coefficient, (int, float, np.integer, np.floating))
        or not math.isfinite(float(coefficient))
    ):
        raise ProbeError(f"The steering coefficient must be a finite number, got {coefficient!r}.")
    vector.check(bundle)
    parameter = next(p for p in bundle.model.parameters() if p.is_floating_point())
    added = (torch.from_numpy(vector.vector) * float(coefficient)).to(parameter.device, parameter.dtype)  # (hidden,)

    def add(x: torch.Tensor) -> torch.Tensor:
        return x + added

    description = {
        "layer": vector.layer,
        "coefficient": float(coefficient),
        "norm": vector.norm,
        "stream_norm": vector.stream_norm,
        "model": vector.model,
        "positive": vector.positive,
        "negative": vector.negative,
    }
    return Site("resid_post", vector.layer), add, description
