"""How well a classifier does on labelled texts: confusion, per-class precision/recall/F1, precision–recall curves.

Example::

    evaluation = evaluate_classifier(clf, load_labelled("movie-snippets").split(0.1)[1])
    evaluation.accuracy, evaluation.macro_f1
    evaluation.curves[1].average_precision          # one-vs-rest, class 1 ("positive") against the rest
    evaluate_classifier(clf, ["Loved it.", "Dull."], ["positive", "negative"])   # labels by name or index
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from workbench.errors import DataError, ProbeError
from workbench.explain.budget import require
from workbench.explain.footprint import ModelShape
from workbench.explain.inputs import check_text, inference
from workbench.training.metrics import classification_metrics, per_class_scores

if TYPE_CHECKING:
    from workbench.data import LabelledData
    from workbench.models import ModelBundle

__all__ = ["ClassifierEvaluation", "PrecisionRecallCurve", "evaluate_classifier", "precision_recall_curve"]


@dataclass(frozen=True)
class PrecisionRecallCurve:
    """One class against the rest: ``precision[i]`` and ``recall[i]`` when every text scoring at least
    ``thresholds[i - 1]`` is called this class. Point 0 is (recall 0, precision 1), before any threshold;
    ``average_precision`` is the sum of ``(recall[i] - recall[i - 1]) * precision[i]`` (NaN with no positives)."""

    label: str
    precision: np.ndarray  # (points,) float64
    recall: np.ndarray  # (points,) float64
    thresholds: np.ndarray  # (points - 1,) the score at which each point after the first is reached, falling
    average_precision: float
    positives: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "precision": self.precision.tolist(),
            "recall": self.recall.tolist(),
            "thresholds": self.thresholds.tolist(),
            "average_precision": None if math.isnan(self.average_precision) else self.average_precision,
            "positives": self.positives,
        }


def precision_recall_curve(scores: np.ndarray, positive: np.ndarray, label: str = "") -> PrecisionRecallCurve:
    """The precision–recall curve of ``scores`` ``(n,)`` for the texts where ``positive`` ``(n,)`` is True.

    Texts are sorted by score, highest first; each distinct score is one threshold, so tied texts enter
    together. With no positive text, recall is undefined: the curve is the single point (0, 1) and the
    average precision NaN.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    sorted_scores, hits = scores[order], positive[order]
    # The last text of each run of equal scores: where a threshold takes in everything scoring at least that.
    ends = np.flatnonzero(np.r_[np.diff(sorted_scores) != 0, True]) if len(scores) else np.zeros(0, dtype=np.int64)
    true_positives = np.cumsum(hits)[ends].astype(np.float64)  # (thresholds,)
    false_positives = (ends + 1) - true_positives
    total = int(positive.sum())
    if total == 0:
        return PrecisionRecallCurve(label, np.ones(1), np.zeros(1), np.zeros(0), math.nan, 0)
    precision = np.r_[1.0, true_positives / (true_positives + false_positives)]
    recall = np.r_[0.0, true_positives / total]
    average_precision = float(np.sum(np.diff(recall) * precision[1:]))
    return PrecisionRecallCurve(label, precision, recall, sorted_scores[ends], average_precision, total)


@dataclass(frozen=True, repr=False)
class ClassifierEvaluation:
    """A classifier's predictions on labelled texts and what they add up to.

    ``confusion[t, p]`` counts the texts of true class ``t`` predicted as ``p``; ``precision``, ``recall``,
    ``f1`` and ``support`` are per class ``(classes,)``; ``curves[c]`` is class ``c`` against the rest.
    """

    model: str
    data: str
    label_names: list[str]
    texts: list[str]
    labels: np.ndarray  # (texts,) int64, true class
    predictions: np.ndarray  # (texts,) int64, argmax of the probabilities
    probabilities: np.ndarray  # (texts, classes) float32, softmax of the logits
    confusion: np.ndarray  # (classes, classes) int64, rows: true, columns: predicted
    precision: np.ndarray  # (classes,) float64
    recall: np.ndarray  # (classes,) float64
    f1: np.ndarray  # (classes,) float64
    support: np.ndarray  # (classes,) int64, texts of each true class
    accuracy: float
    macro_f1: float
    curves: list[PrecisionRecallCurve]

    @property
    def average_precision(self) -> np.ndarray:
        """Each class's average precision ``(classes,)`` (NaN for a class with no text)."""
        return np.array([c.average_precision for c in self.curves])

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "data": self.data,
            "label_names": list(self.label_names),
            "texts": list(self.texts),
            "labels": self.labels.tolist(),
            "predictions": self.predictions.tolist(),
            "probabilities": self.probabilities.tolist(),
            "confusion": self.confusion.tolist(),
            "precision": self.precision.tolist(),
            "recall": self.recall.tolist(),
            "f1": self.f1.tolist(),
            "support": self.support.tolist(),
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "curves": [c.to_dict() for c in self.curves],
        }

    def __repr__(self) -> str:
        return (
            f"ClassifierEvaluation({self.model} on {self.data}: {len(self.texts)} texts, {len(self.label_names)} "
            f"classes, accuracy {self.accuracy:.3f}, macro F1 {self.macro_f1:.3f})"
        )


def evaluate_classifier(
    bundle: ModelBundle,
    data: LabelledData | Sequence[str],
    labels: Sequence[int | str] | None = None,
    *,
    batch_size: int = 32,
    max_length: int = 128,
    memory_mb: int | None = None,
) -> ClassifierEvaluation:
    """Run the classifier on labelled texts and measure it; returns a ``ClassifierEvaluation``.

    ``data`` is ``LabelledData`` (its label names are matched to the classifier's by name), or a list of
    texts with ``labels`` (class indices or the classifier's label names). Texts are cut at ``max_length``
    tokens and run ``batch_size`` at a time. Raises ``ProbeError`` for a model that is not a classifier or
    a bad option, ``DataError`` for no texts, an empty text, labels missing, of another length or out of
    range, and ``MemoryBudgetError`` when one batch would exceed ``memory_mb``.
    """
    if getattr(bundle, "kind", None) != "classifier":
        what = f"a {bundle.kind} model" if hasattr(bundle, "kind") else f"a {type(bundle).__name__}"
        raise ProbeError(
            f"evaluate_classifier needs a classifier, got {what}; load one with "
            "load_model(..., kind='classifier', label_names=[...]) and fine-tune it on the 'classify' task."
        )
    for name, value in (("batch_size", batch_size), ("max_length", max_length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ProbeError(f"{name} must be a positive whole number, got {value!r}.")
    names = list(bundle.label_names or [])
    data_name, texts, targets, names = _labelled(data, labels, names)
    length = min(max_length, bundle.max_positions)
    batch = min(batch_size, len(texts))
    shape = ModelShape.of(bundle.model)
    require(
        batch * (shape.layer_bytes(length) + shape.logits_bytes(1, len(names))),
        memory_mb,
        f"evaluating {bundle.name} on batches of {batch} texts of up to {length:,} tokens",
        "a smaller batch_size or a shorter max_length",
    )
    probabilities = _probabilities(bundle, texts, batch, length)  # (texts, classes)
    predictions = probabilities.argmax(axis=1).astype(np.int64)
    summary = classification_metrics(predictions, targets, len(names))
    confusion = np.asarray(summary["confusion_matrix"], dtype=np.int64)
    precision, recall, f1 = per_class_scores(confusion)
    curves = [precision_recall_curve(probabilities[:, c], targets == c, names[c]) for c in range(len(names))]
    return ClassifierEvaluation(
        model=bundle.name,
        data=data_name,
        label_names=names,
        texts=texts,
        labels=targets,
        predictions=predictions,
        probabilities=probabilities,
        confusion=confusion,
        precision=precision,
        recall=recall,
        f1=f1,
        support=confusion.sum(axis=1),
        accuracy=float(summary["accuracy"]),
        macro_f1=float(summary["macro_f1"]),
        curves=curves,
    )


def _labelled(
    data: object, labels: Sequence[int | str] | None, names: list[str]
) -> tuple[str, list[str], np.ndarray, list[str]]:
    """(data name, texts, labels as the classifier's class indices, label names) or a ``DataError``."""
    from workbench.data import LabelledData

    if isinstance(data, LabelledData):
        if labels is not None:
            raise DataError("LabelledData carries its own labels; give labels= only with a list of texts.")
        texts, targets, name = list(data.texts), _matched(data, names), data.name
    elif isinstance(data, (list, tuple)):
        if not data:
            raise DataError("There are no texts to evaluate on; give at least one labelled text.")
        if labels is None:
            raise DataError(
                "evaluate_classifier needs the true labels: give labels=[...] (one per text) or a LabelledData."
            )
        if isinstance(labels, str) or not isinstance(labels, Sequence):
            raise DataError(f"labels must be a list with one label per text, got {type(labels).__name__}.")
        if len(labels) != len(data):
            raise DataError(f"{len(data)} texts but {len(labels)} labels; give one label per text.")
        texts, targets, name = list(data), np.array([_index(y, names) for y in labels], dtype=np.int64), "texts"
    else:
        raise DataError(
            f"evaluate_classifier takes LabelledData or a list of texts with labels=, got {type(data).__name__}."
        )
    if not texts:
        raise DataError("There are no texts to evaluate on; give at least one labelled text.")
    for i, t in enumerate(texts):
        check_text(t, f"Text {i}", DataError)
    return name, texts, targets, names


def _index(label: object, names: list[str]) -> int:
    """A label as a class index: an index in range, or one of the classifier's label names."""
    if isinstance(label, str):
        if label in names:
            return names.index(label)
        raise DataError(f"The label {label!r} is not one of the classifier's labels ({', '.join(names)}).")
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool) and 0 <= int(label) < len(names):
        return int(label)
    raise DataError(
        f"The label {label!r} is out of range: the classifier has {len(names)} classes "
        f"({', '.join(names)}), so a label is 0 to {len(names) - 1} or one of those names."
    )


def _matched(data: LabelledData, names: list[str]) -> np.ndarray:
    """The data's labels as the classifier's class indices, matched by name; by index where the classifier's
    names are generic (``LABEL_0`` ...), as the ``classify`` task matches them when it trains."""
    if all(n in names for n in data.label_names):
        lookup = np.array([names.index(n) for n in data.label_names], dtype=np.int64)
        return lookup[np.asarray(data.labels, dtype=np.int64)]
    generic = all(n.startswith("LABEL_") for n in names)
    if generic and len(data.label_names) <= len(names):
        names[: len(data.label_names)] = data.label_names
        return np.asarray(data.labels, dtype=np.int64)
    raise DataError(
        f"The data's labels ({', '.join(data.label_names)}) are not the classifier's ({', '.join(names)}); "
        "evaluate it on data with the labels it was trained on."
    )


def _probabilities(bundle: ModelBundle, texts: list[str], batch: int, length: int) -> np.ndarray:
    """The softmax of the classifier's logits for every text, float32 ``(texts, classes)``, in the texts' order."""
    out = []
    with inference(bundle.model):
        for start in range(0, len(texts), batch):
            enc = bundle.tokenizer(
                texts[start : start + batch], return_tensors="pt", padding=True, truncation=True, max_length=length
            )
            logits = bundle.model(
                input_ids=enc["input_ids"].to(bundle.device), attention_mask=enc["attention_mask"].to(bundle.device)
            ).logits  # (batch, classes)
            out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    return np.concatenate(out).astype(np.float32)
