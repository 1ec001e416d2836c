"""One probe on several models or checkpoints, side by side; and how a list of models is read.

``resolve_models`` is the one place that turns what a person hands over (a bundle, a run folder,
checkpoint folders, model names, or a mapping from labels to any of those) into labelled models,
naming a checkpoint "step 200" as ``checkpoint_label`` does. ``compare`` and the ``MaskProbe``
view both read their models through it, and load them with ``load_resolved``.

Example::

    runs = compare(["runs/bert/step-0000200", "runs/bert/step-0001000"], fill_mask, "To be, or not to [MASK].")
    for label, result in runs: print(label, result)      # "step 200", then "step 1000"
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias, TypeGuard

from workbench.errors import ModelListError, ProbeError
from workbench.explain.budget import memory_budget, require
from workbench.explain.footprint import ModelShape
from workbench.explain.inputs import check_text, with_model_mask
from workbench.models import ModelBundle
from workbench.training.checkpoint import checkpoint_label, run_checkpoints

__all__ = ["Comparison", "ModelSource", "Models", "compare", "load_resolved", "resolve_models"]

# One model as a person names it: a loaded bundle, a model or checkpoint folder, or an asset, preset or hub name.
ModelSource: TypeAlias = ModelBundle | str | os.PathLike[str]
# What compare and MaskProbe take: one model (a run folder stands for its checkpoints), several, or labelled ones.
Models: TypeAlias = ModelSource | Sequence[ModelSource] | Mapping[str, ModelSource]


@dataclass
class Comparison:
    """A probe's result per model, in the order given; ``labels`` name the models (checkpoint folders by step)."""

    probe: str
    text: str
    labels: list[str] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(zip(self.labels, self.results, strict=True))

    def __len__(self) -> int:
        return len(self.labels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "text": self.text,
            "runs": [{"label": label, "result": r.to_dict() if hasattr(r, "to_dict") else r} for label, r in self],
        }

    def __str__(self) -> str:
        return "\n\n".join(f"== {label} ==\n{result}" for label, result in self)


def _label(model: ModelSource) -> str:
    """A bundle's name; "step 200" for a checkpoint folder, a folder's name, or the name as given."""
    if isinstance(model, ModelBundle):
        return model.name
    path = Path(model)
    return checkpoint_label(path) if path.exists() else str(model)


def _is_source(model: object) -> TypeGuard[ModelSource]:
    return isinstance(model, (ModelBundle, str, os.PathLike))


def resolve_models(models: object, caller: str = "compare") -> list[tuple[str, ModelSource]]:
    """``(label, model)`` pairs, in order, from the ``Models`` that ``caller`` was given; nothing is loaded yet.

    A run folder (or its ``checkpoints`` folder) gives its complete checkpoints, oldest first, each
    labelled "step N"; any other folder or name gives itself; a bundle is labelled with its name; a
    mapping keeps its labels. Raises ``ModelListError`` (a ``ProbeError`` and a ``TypeError``) for
    anything else or for no model at all.
    """
    pairs: list[tuple[str, object]]
    if isinstance(models, Mapping):
        pairs = [(str(label), model) for label, model in models.items()]
    elif isinstance(models, (str, os.PathLike)):
        found = run_checkpoints(models)
        pairs = [(checkpoint_label(p), p) for p in found] if found else [(_label(models), models)]
    elif isinstance(models, ModelBundle):
        pairs = [(models.name, models)]
    elif isinstance(models, Sequence):
        pairs = [(_label(m), m) if _is_source(m) else ("", m) for m in models]
    else:
        pairs = [("", models)]
    if not pairs:
        raise ModelListError(f"{caller} needs at least one model or checkpoint.")
    resolved: list[tuple[str, ModelSource]] = []
    for label, model in pairs:
        if not _is_source(model):
            raise ModelListError(
                f"{caller} takes a model bundle, a run folder with checkpoints, a list of bundles, checkpoint "
                f"folders or model names, or a mapping from labels to them; got {type(model).__name__}."
            )
        resolved.append((label, model))
    return resolved


def load_resolved(model: ModelSource) -> ModelBundle:
    """The bundle itself, or the model loaded from its folder or name (``load_model``)."""
    if isinstance(model, ModelBundle):
        return model
    from workbench.models import load_model

    return load_model(str(model))


def compare(
    models: Models, probe: Callable[..., Any] | str, text: str, *, memory_mb: int | None = None, **options: Any
) -> Comparison:
    """Run ``probe(bundle, text, **options)`` on each model and return the results side by side.

    ``models``: bundles, checkpoint folders (``runs/x/step-0000500``, labelled "step 500"), a run
    folder (all its checkpoints), asset or preset names, or a mapping from a label to any of those.
    ``probe``: ``fill_mask``, ``next_token``, ``logit_lens`` (the functions or their names) or any
    function with that signature. ``memory_mb`` (default: the kernel's budget) goes to a probe that
    takes it, which checks its own budget; for any other probe, each model's forward on the text
    (every position's logits) is checked here: for loaded bundles before any probe runs, for folders
    and names once loaded, before their probe runs. Raises ``ProbeError`` for an unknown probe or
    no model, and ``MemoryBudgetError`` when a model's forward would not fit the budget.
    """
    from workbench.explain.lens import logit_lens
    from workbench.explain.probe import fill_mask, next_token

    budget = memory_budget(memory_mb)
    named: dict[str, Callable[..., Any]] = {"fill_mask": fill_mask, "next_token": next_token, "logit_lens": logit_lens}
    if isinstance(probe, str):
        if probe not in named:
            raise ProbeError(f"Unknown probe {probe!r}; use one of {', '.join(named)} or pass a function.")
        probe = named[probe]
    if not callable(probe):
        raise ProbeError("probe must be a function such as fill_mask, or its name.")
    checks_itself = _takes_budget(probe)
    if checks_itself:
        options = {**options, "memory_mb": budget}
    name = getattr(probe, "__name__", "probe")
    resolved = resolve_models(models, "compare")
    if not checks_itself:
        for _, model in resolved:
            if isinstance(model, ModelBundle):
                _require(model, name, text, budget)
    comparison = Comparison(name, text)
    for label, model in resolved:
        bundle = load_resolved(model)
        if not checks_itself and not isinstance(model, ModelBundle):
            _require(bundle, name, text, budget)
        comparison.labels.append(label)
        comparison.results.append(probe(bundle, text, **options))
    return comparison


def _takes_budget(probe: Callable[..., Any]) -> bool:
    try:
        return "memory_mb" in inspect.signature(probe).parameters
    except (TypeError, ValueError):  # a builtin or a callable without a signature
        return False


def _require(bundle: ModelBundle, probe: str, text: object, memory_mb: int) -> None:
    """Raise ``MemoryBudgetError`` when one forward of ``text`` through ``bundle``, with every position's
    logits, needs more than ``memory_mb``. Raises ``ProbeError`` for text the probes would refuse."""
    text = check_text(text)
    tok = bundle.tokenizer
    ids = tok(with_model_mask(tok, text) if tok.mask_token else text, verbose=False)["input_ids"]
    n = min(len(ids), bundle.max_positions)
    shape = ModelShape.of(bundle.model)
    require(
        shape.layer_bytes(n) + shape.logits_bytes(n),
        memory_mb,
        f"the {probe} probe on {n:,} tokens of {bundle.name}",
        "a shorter text",
    )
