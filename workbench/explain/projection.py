"""Where a model puts each text, layer by layer: pooled hidden states projected to 2 or 3 dimensions.

Every row's hidden states (the embeddings row, then each layer's output, as probing reads them with
``layer_features``) are pooled into one vector per text and projected, row by row, onto their first
principal components: numpy's SVD of the centred vectors, each component's sign chosen so that its
largest loading is positive (the same texts give the same picture on every run). A classifier's
predicted label for each text comes along, so a figure can colour the points by what the model says.

Example::

    result = project_layers(classifier, texts, labels, pooling="mean", dims=2)
    result.coords[-1]              # (texts, 2): the last layer's picture
    result.explained_variance[-1]  # the share of that layer's variance each axis shows
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from workbench.errors import ProbeError
from workbench.explain.compare import ModelSource, load_resolved, resolve_models
from workbench.explain.inputs import check_text, inference
from workbench.explain.probing import Pooling, layer_features

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["METHODS", "MIN_TEXTS", "ProjectionResult", "check_options", "check_texts", "pca", "project_layers"]

METHODS = ("pca",)
MIN_TEXTS = 3  # two points always lie on a line: a projection of fewer shows nothing
COORD_DECIMALS = 5


@dataclass
class ProjectionResult:
    """Each text's place in every row (embeddings, then each layer) of one model, on the row's principal axes.

    ``coords`` is ``(rows, texts, dims)`` float32; ``explained_variance`` is ``(rows, dims)``, the share of
    the row's total variance along each axis (largest first). ``labels`` are the label names given with the
    texts, ``predictions`` the classifier's predicted label names; either is ``None`` when absent.
    """

    model: str
    texts: list[str]
    labels: list[str] | None
    predictions: list[str] | None
    layer_names: list[str]
    coords: np.ndarray  # (rows, texts, dims)
    explained_variance: np.ndarray  # (rows, dims)
    method: str
    pooling: str

    @property
    def dims(self) -> int:
        return int(self.coords.shape[2])

    def layer_index(self, layer: object) -> int:
        """``layer`` (an index of ``layer_names``, -1 for the last) as an index from 0.

        Raises ``ProbeError`` when it is not a whole number in range.
        """
        rows = len(self.layer_names)
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise ProbeError(f"layer must be a whole number (an index of layer_names, -1 for the last), got {layer!r}.")
        if not -rows <= int(layer) < rows:
            raise ProbeError(
                f"Layer {layer} is out of range: {self.model} has {rows} rows, 0 (the embeddings) to {rows - 1}, or -1."
            )
        return int(layer) % rows

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-safe lists and numbers (coordinates rounded to 5 places, shares to 4)."""
        return {
            "model": self.model,
            "texts": list(self.texts),
            "labels": None if self.labels is None else list(self.labels),
            "predictions": None if self.predictions is None else list(self.predictions),
            "layer_names": list(self.layer_names),
            "coords": np.round(self.coords.astype(np.float64), COORD_DECIMALS).tolist(),
            "explained_variance": np.round(self.explained_variance.astype(np.float64), 4).tolist(),
            "method": self.method,
            "pooling": self.pooling,
        }

    def __repr__(self) -> str:
        shown = ", ".join(f"{v:.0%}" for v in self.explained_variance[-1])
        return (
            f"ProjectionResult({self.model}, {len(self.texts)} texts, {self.pooling} pooling, {self.method.upper()} to "
            f"{self.dims} dims over {len(self.layer_names)} rows; last row's axes explain {shown})"
        )


def project_layers(
    model: ModelSource,
    texts: Sequence[str],
    labels: Sequence[str | int] | None = None,
    *,
    pooling: Pooling = "mean",
    method: str = "pca",
    dims: int = 2,
    max_length: int = 128,
    batch_size: int = 32,
    progress: bool = True,
    memory_mb: int | None = None,
) -> ProjectionResult:
    """Pool every row's hidden states of each text and project each row onto its first ``dims`` principal axes.

    ``model``: a bundle, a model name or a checkpoint folder. ``labels``: one per text, names or integers
    (a classifier's integers are shown as its label names). ``pooling``: "mean" over the real tokens, "cls"
    (the first token) or "last" (the last real token, what a causal model has read the whole text at).
    ``method``: "pca", the only one. A classifier's predictions come along. Returns a ``ProjectionResult``.
    Raises ``ProbeError`` for fewer than 3 texts, an empty text, labels that do not match the texts, a bad
    option or a model without hidden states, and ``MemoryBudgetError`` before the features would exceed
    ``memory_mb``.
    """
    texts = check_texts(texts)
    check_options(method, dims)
    if labels is not None and (isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence)):
        raise ProbeError(f"labels must be a list with one label per text, got {type(labels).__name__}.")
    if labels is not None and len(labels) != len(texts):
        raise ProbeError(f"{len(texts)} texts but {len(labels)} labels were given; give one label per text.")
    resolved = resolve_models(model, "project_layers")
    if len(resolved) != 1:
        raise ProbeError(
            f"project_layers projects one model, and {model} holds {len(resolved)} checkpoints; "
            "give one checkpoint folder (or two to project, which draws them side by side)."
        )
    label, source = resolved[0]
    bundle = load_resolved(source)

    from tqdm.auto import tqdm

    with tqdm(total=len(texts), disable=not progress, desc="layer features", unit="text") as bar:
        features = layer_features(
            bundle, texts, pooling=pooling, max_length=max_length, batch_size=batch_size, memory_mb=memory_mb, bar=bar
        )  # (rows, texts, hidden)
    coords, explained = pca(features, dims)
    rows = features.shape[0]
    return ProjectionResult(
        model=label,
        texts=list(texts),
        labels=None if labels is None else _label_names(labels, bundle.label_names),
        predictions=_predictions(bundle, texts, max_length, batch_size) if bundle.kind == "classifier" else None,
        layer_names=["embeddings"] + [f"layer {i}" for i in range(1, rows)],
        coords=coords,
        explained_variance=explained,
        method=method,
        pooling=pooling,
    )


def pca(features: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's vectors on its first ``dims`` principal axes, and the share of variance along each.

    ``features`` is ``(rows, texts, hidden)``; returns ``coords`` float32 ``(rows, texts, dims)`` and
    ``explained`` float32 ``(rows, dims)``. Each axis is flipped so that its largest-magnitude loading is
    positive: an SVD's signs are arbitrary, and the same texts should give the same picture. A row whose
    vectors are all equal (the "cls" row of the embeddings) lies at the origin with no variance explained.
    """
    rows, n, _ = features.shape  # (rows, texts, hidden)
    coords = np.zeros((rows, n, dims), dtype=np.float32)  # (rows, texts, dims)
    explained = np.zeros((rows, dims), dtype=np.float32)  # (rows, dims)
    for row in range(rows):
        centred = features[row].astype(np.float64) - features[row].astype(np.float64).mean(0)  # (texts, hidden)
        _, singular, axes = np.linalg.svd(centred, full_matrices=False)  # axes: (min(texts, hidden), hidden)
        total = float(np.sum(singular**2))
        if total <= 0:
            continue
        k = min(dims, axes.shape[0])
        axes = axes[:k]  # (k, hidden)
        largest = np.abs(axes).argmax(1)  # (k,)
        axes = axes * np.sign(axes[np.arange(k), largest])[:, None]
        coords[row, :, :k] = centred @ axes.T
        explained[row, :k] = singular[:k] ** 2 / total
    return coords, explained


def check_texts(texts: object) -> list[str]:
    """``texts`` as a list of at least ``MIN_TEXTS`` non-empty strings; ``ProbeError`` with a sentence otherwise."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise ProbeError(f"texts must be a list of strings, got {type(texts).__name__}.")
    if len(texts) < MIN_TEXTS:
        raise ProbeError(f"A projection needs at least {MIN_TEXTS} texts, got {len(texts)}; give more texts.")
    return [check_text(t, f"Text {i}") for i, t in enumerate(texts)]


def check_options(method: object, dims: object) -> None:
    """Raise ``ProbeError`` with one sentence for a method or a number of dimensions the projection does not take."""
    if method not in METHODS:
        raise ProbeError(
            f"Unknown projection method {method!r}; the projector computes 'pca' (principal components), "
            "which needs no other package."
        )
    if isinstance(dims, bool) or dims not in (2, 3):
        raise ProbeError(f"dims must be 2 or 3 (a flat or a 3-D picture), got {dims!r}.")


def _label_names(labels: Sequence[str | int], names: list[str] | None) -> list[str]:
    """Labels as names: a classifier's integer labels by its label names, anything else as written."""
    if names is not None and all(
        isinstance(y, (int, np.integer)) and not isinstance(y, bool) and 0 <= y < len(names) for y in labels
    ):
        return [names[int(y)] for y in labels]
    return [str(y) for y in labels]


def _predictions(bundle: ModelBundle, texts: Sequence[str], max_length: int, batch_size: int) -> list[str]:
    """The classifier's predicted label name for each text, in batches (one at a time without a pad token)."""
    tok = bundle.tokenizer
    names = bundle.label_names or []
    size = batch_size if tok.pad_token is not None else 1
    length = min(max_length, bundle.max_positions)
    predicted: list[int] = []
    with inference(bundle.model):
        for start in range(0, len(texts), size):
            enc = tok(
                list(texts[start : start + size]),
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=length,
                verbose=False,
            )
            logits = bundle.model(**{k: v.to(bundle.device) for k, v in enc.items()}).logits  # (batch, labels)
            predicted.extend(torch.argmax(logits, -1).tolist())
    return [names[i] if i < len(names) else str(i) for i in predicted]
