"""One probe on several models or checkpoints, side by side.

Example::

    runs = compare(["runs/bert/step-0000200", "runs/bert/step-0001000"], fill_mask, "To be, or not to [MASK].")
    for label, result in runs: print(label, result)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.explain.probe import ProbeError

__all__ = ["Comparison", "compare"]


@dataclass
class Comparison:
    """A probe's result per model, in the order given; ``labels`` name the models (checkpoint folders by step)."""

    probe: str
    text: str
    labels: list[str] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(zip(self.labels, self.results))

    def __len__(self) -> int:
        return len(self.labels)

    def to_dict(self) -> dict:
        return {
            "probe": self.probe,
            "text": self.text,
            "runs": [{"label": label, "result": r.to_dict() if hasattr(r, "to_dict") else r} for label, r in self],
        }

    def __str__(self) -> str:
        return "\n\n".join(f"== {label} ==\n{result}" for label, result in self)


def _load(model: Any) -> tuple[str, Any]:
    if isinstance(model, (str, os.PathLike)):
        from workbench.models import load_model

        path = Path(model)
        return (path.name if path.exists() else str(model)), load_model(str(model))
    if hasattr(model, "model") and hasattr(model, "tokenizer"):
        return model.name, model
    raise ProbeError(f"compare takes bundles, checkpoint folders or model names; got {type(model).__name__}.")


def compare(
    models: Sequence[Any] | Mapping[str, Any], probe: Callable[..., Any] | str, text: str, **options: Any
) -> Comparison:
    """Run ``probe(bundle, text, **options)`` on each model and return the results side by side.

    ``models``: bundles, checkpoint folders (``runs/x/step-0000500``), asset or preset names, or a
    mapping from a label to any of those. ``probe``: ``fill_mask``, ``next_token``, ``logit_lens``
    (the functions or their names) or any function with that signature.
    """
    from workbench.explain.lens import logit_lens
    from workbench.explain.probe import fill_mask, next_token

    named = {"fill_mask": fill_mask, "next_token": next_token, "logit_lens": logit_lens}
    if isinstance(probe, str):
        if probe not in named:
            raise ProbeError(f"Unknown probe {probe!r}; use one of {', '.join(named)} or pass a function.")
        probe = named[probe]
    if not callable(probe):
        raise ProbeError("probe must be a function such as fill_mask, or its name.")
    items = list(models.items()) if isinstance(models, Mapping) else [(None, m) for m in models]
    if not items:
        raise ProbeError("compare needs at least one model or checkpoint.")
    comparison = Comparison(getattr(probe, "__name__", "probe"), text)
    for label, model in items:
        name, bundle = _load(model)
        comparison.labels.append(label or name)
        comparison.results.append(probe(bundle, text, **options))
    return comparison
