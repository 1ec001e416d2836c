"""Students to distil a teacher into: a copy keeping some of its layers (every other one, as DistilBERT
initialises), or a fresh preset model that shares the teacher's tokenizer and labels.

Example::

    from workbench.compress.distill import every_other_layer
    from workbench.training import TrainConfig, Trainer
    student = every_other_layer(teacher)               # layers 0, 2, 4, ... of the teacher's, copied
    Trainer(student, "distill", train, val, config=TrainConfig(temperature=2.0), teacher=teacher).fit()
    compare_models(teacher, student, val, texts)       # attention drift: student layer i vs teacher layer 2i
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import torch

from workbench.compress.operations import check_bundle
from workbench.errors import CompressionError
from workbench.models import ModelBundle

if TYPE_CHECKING:
    from workbench.models.hf import ModelKind

__all__ = ["PRESET_STUDENTS", "every_other_layer", "keep_layers", "layer_list", "preset_student"]

_STUDENT_KINDS: tuple[ModelKind, ...] = ("classifier", "masked-lm", "encoder")
PRESET_STUDENTS = ("tiny-bert",)  # the presets a student can be built from: encoders


def layer_list(model: Any) -> torch.nn.ModuleList:
    """The transformer layers of an encoder: ``encoder.layer`` (BERT, MiniLM) or ``layers`` (ModernBERT).

    Raises ``CompressionError`` for a model whose layers are kept elsewhere.
    """
    base = getattr(model, "base_model", model)
    encoder = getattr(base, "encoder", None)
    for layers in (getattr(encoder, "layer", None), getattr(base, "layers", None)):
        if isinstance(layers, torch.nn.ModuleList):
            return layers
    raise CompressionError(
        f"{type(model).__name__} keeps its layers where a student copy cannot find them (BERT's encoder.layer or "
        "ModernBERT's layers); build a student with preset_student(teacher) instead."
    )


def keep_layers(teacher: ModelBundle, layers: Sequence[int], *, name: str | None = None) -> ModelBundle:
    """A deep copy of ``teacher`` with only ``layers`` (teacher indices, in order): the student's layer ``i`` is
    the teacher's ``layers[i]``, its weights copied; embeddings, heads and tokenizer as the teacher's.

    The copy records ``extra["distillation"] = {"teacher": name, "layers": [...]}`` (``compare_models`` reads
    it to pair layers). The teacher is left as it was. Raises ``CompressionError`` for a causal LM, a compressed
    model, an architecture whose layers it cannot find, or layer indices that are not increasing and in range.
    """
    check_bundle(teacher, "keep_layers")
    if teacher.kind not in _STUDENT_KINDS or teacher.is_causal:
        raise CompressionError(
            f"{teacher.name} is a {teacher.kind}; students are built from encoders, masked LMs and classifiers "
            "(distillation here trains classifiers and masked LMs)."
        )
    if teacher.compression:
        raise CompressionError(
            f"{teacher.name} is already compressed ({teacher.compression.get('method')}); build the student from the "
            "original model."
        )
    total = len(layer_list(teacher.model))
    kept = [int(i) for i in layers]
    if not kept or any(b <= a for a, b in itertools.pairwise(kept)) or kept[0] < 0 or kept[-1] >= total:
        raise CompressionError(
            f"layers must be increasing indices of {teacher.name}'s {total} layers (0 to {total - 1}), got {kept}."
        )
    model: Any = copy.deepcopy(teacher.model)  # tied weights stay tied; config is copied once, shared inside
    old = layer_list(model)
    new = torch.nn.ModuleList([old[i] for i in kept])
    for index, layer in enumerate(new):
        for module in layer.modules():  # attention modules know their layer (for caches and layer types)
            if isinstance(getattr(module, "layer_idx", None), int):
                cast("Any", module).layer_idx = index
    _replace_layers(model, new)
    config = model.config
    config.num_hidden_layers = len(kept)
    if isinstance(getattr(config, "layer_types", None), list):  # ModernBERT: global or sliding attention per layer
        config.layer_types = [config.layer_types[i] for i in kept]
    extra = {k: copy.deepcopy(v) for k, v in teacher.extra.items() if k != "distillation"}
    extra["distillation"] = {"teacher": teacher.name, "layers": kept}
    heads = {task: copy.deepcopy(head) for task, head in teacher.heads.items()}
    return ModelBundle(
        model,
        teacher.tokenizer,
        teacher.kind,
        name or f"{teacher.name} · {len(kept)} of {total} layers",
        teacher.source,
        extra=extra,
        heads=heads,
    )


def _replace_layers(model: Any, layers: torch.nn.ModuleList) -> None:
    base = getattr(model, "base_model", model)
    encoder: Any = getattr(base, "encoder", None)
    if isinstance(getattr(encoder, "layer", None), torch.nn.ModuleList):
        encoder.layer = layers
    else:
        base.layers = layers


def every_other_layer(teacher: ModelBundle, *, name: str | None = None) -> ModelBundle:
    """A student keeping the teacher's layers 0, 2, 4, …: half its depth, as DistilBERT initialises (Sanh et al.
    2019, section 3); see ``keep_layers`` for what is copied and recorded. A 6-layer teacher gives a 3-layer student.

    Raises ``CompressionError`` for a teacher of one layer (nothing to drop) and as ``keep_layers`` does.
    """
    check_bundle(teacher, "every_other_layer")
    total = len(layer_list(teacher.model))
    if total < 2:
        raise CompressionError(
            f"{teacher.name} has {total} layer, so every other layer keeps all of it; distil into a smaller preset "
            "with preset_student(teacher, layers=1) instead."
        )
    return keep_layers(teacher, range(0, total, 2), name=name)


def preset_student(
    teacher: ModelBundle,
    preset: str = "tiny-bert",
    *,
    layers: int = 3,
    hidden: int | None = None,
    heads: int | None = None,
    seed: int = 0,
    name: str | None = None,
) -> ModelBundle:
    """A fresh ``preset`` model (``tiny-bert``: ModernBERT-style) of the teacher's kind, tokenizer and label names,
    so its logits line up with the teacher's; ``hidden`` and ``heads`` default to the teacher's. It records the
    teacher it is for in ``extra["distillation"]``.

    Example::

        student = preset_student(minilm_classifier, layers=3)   # 3 layers, hidden 384, 12 heads, MiniLM's vocabulary

    Raises ``CompressionError`` for an unknown preset or a teacher that is not a classifier or masked LM, and
    ``ModelLoadError`` for sizes the preset refuses (``hidden`` not divisible by ``heads``, ...).
    """
    from workbench.models import load_model

    check_bundle(teacher, "preset_student")
    if preset not in PRESET_STUDENTS:
        raise CompressionError(
            f"{preset!r} is not a preset a student can be built from; use one of: {', '.join(PRESET_STUDENTS)}."
        )
    if teacher.kind not in ("classifier", "masked-lm") or teacher.is_causal:
        raise CompressionError(
            f"{teacher.name} is a {teacher.kind}; distillation trains classifiers and masked LMs, so a student is "
            "built for one of those."
        )
    config = teacher.model.config
    student = load_model(
        preset,
        kind=teacher.kind,
        tokenizer=teacher.tokenizer,
        label_names=teacher.label_names,
        layers=layers,
        hidden=hidden or int(config.hidden_size),
        heads=heads or int(config.num_attention_heads),
        seed=seed,
        max_positions=teacher.max_positions,
    )
    student.name = name or f"{preset} student of {teacher.name}"
    student.extra["distillation"] = {"teacher": teacher.name}
    return student
