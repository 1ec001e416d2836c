"""Probing classifiers: at which layer does a property of the text become linearly readable?

Every layer's hidden states (the embeddings row, then each layer's output, as in the logit lens)
are pooled into one vector per text, computed once and batched; a multinomial logistic
regression is fitted on each row's vectors and scored on held-out texts (Conneau et al. 2018).
A probe that reads a property might only be memorising its inputs, so the same probe is fitted
on a control task, labels that carry no property of the text (Hewitt and Liang 2019); the
selectivity is the accuracy minus the control accuracy. A run folder probes every checkpoint.

Example::

    result = probe_layers("minilm", "movie-snippets", pooling="mean")
    result.layer_names[result.best_layer()], result.accuracy[-1], result.selectivity[-1]
    probe_layers("runs/sentiment", "movie-snippets").accuracy   # (checkpoints, rows): when it became readable
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import torch

from workbench.errors import DataError, ProbeError
from workbench.explain.budget import require
from workbench.explain.compare import Models, load_resolved, resolve_models
from workbench.explain.footprint import FLOAT, ModelShape
from workbench.explain.inputs import accepts_argument, inference
from workbench.explain.probing_result import ProbeLayersResult

if TYPE_CHECKING:
    from workbench.data import LabelledData
    from workbench.models import ModelBundle

__all__ = ["ProbeLayersResult", "layer_features", "probe_layers"]

Pooling = Literal["cls", "mean", "last"]
Control = Literal["shuffle", "word-type"]
POOLINGS = ("cls", "mean", "last")
CONTROLS = ("shuffle", "word-type")
MIN_TRAIN_PER_CLASS = 4  # fewer, and a probe's accuracy says more about the split than the layer
MIN_TEST_PER_CLASS = 2
FIT_STEPS = 300  # full-batch Adam steps: MiniLM's probes end within 1e-4 of the L-BFGS optimum's loss
FIT_LEARNING_RATE = 0.05
L2_PENALTY = 1e-2  # times the summed squared weights, added to the mean cross-entropy: see _fit_probes
_WORDS = re.compile(r"\w+")


class Progress(Protocol):
    """What ``layer_features`` advances as texts are done: a tqdm bar, or anything with ``update(n)``."""

    def update(self, n: int) -> object: ...


def probe_layers(
    model: Models,
    data: LabelledData | str | Sequence[tuple[str, str | int]],
    *,
    pooling: Pooling = "mean",
    control: Control = "shuffle",
    test_share: float = 0.25,
    max_examples: int | None = 2000,
    max_length: int = 128,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = True,
    memory_mb: int | None = None,
) -> ProbeLayersResult:
    """Fit a linear probe on each row's pooled hidden states and score it on held-out texts, with a control task.

    ``model``: a bundle, a model name, a checkpoint folder, or a run folder (every checkpoint, oldest
    first, loaded one at a time). ``data``: ``LabelledData``, a registry name ("movie-snippets") or
    (text, label) pairs; at most ``max_examples`` are kept (a seeded pick keeping each class's share)
    and split seeded and stratified, ``test_share`` held out, the same split for every checkpoint.
    ``pooling``: "mean" over the real tokens, "cls", the first token (for a causal model it sees
    only itself), or "last", the last real token (the one a causal model has read the whole text at).
    ``control``: "shuffle" permutes the labels across texts; "word-type" gives every word type a seeded
    random label and a text the label of one of its word types (see ``_control_labels``).
    Returns a ``ProbeLayersResult``. Raises ``DataError`` for data with one class or too few examples
    of a class, ``ProbeError`` for a bad option, a model without hidden states (ONNX) or a folder with
    no model or checkpoint, and ``MemoryBudgetError`` before a model's features would exceed ``memory_mb``.
    """
    _check_options(pooling, control, test_share, max_examples=max_examples, max_length=max_length, seed=seed)
    _check_count("batch_size", batch_size)
    sources = resolve_models(model, "probe_layers")
    for _, source in sources:
        _check_folder(source)
    labelled = _labelled(data)
    kept = _pick(np.asarray(labelled.labels), max_examples, seed)
    texts = [labelled.texts[i] for i in kept]
    labels = np.asarray([labelled.labels[i] for i in kept], dtype=np.int64)  # (examples,)
    classes = len(labelled.label_names)
    train, test = _split(labels, test_share, seed, labelled.label_names)
    controls = _control_labels(texts, labels, control, seed)
    majority_class = int(np.bincount(labels[train], minlength=classes).argmax())
    majority = float(np.mean(labels[test] == majority_class))

    from tqdm.auto import tqdm

    names: list[str] = []
    accuracy, control_accuracy = [], []
    model_name = ""
    layer_names: list[str] = []
    with tqdm(total=len(sources) * len(texts), disable=not progress, desc="layer features", unit="text") as bar:
        for label, source in sources:
            bundle = load_resolved(source)
            bar.set_description(f"layer features ({label})" if len(sources) > 1 else "layer features")
            features = layer_features(
                bundle,
                texts,
                pooling=pooling,
                max_length=max_length,
                batch_size=batch_size,
                memory_mb=memory_mb,
                bar=bar,
            )  # (rows, examples, hidden)
            rows = features.shape[0]
            if layer_names and rows != len(layer_names):
                raise ProbeError(
                    f"{label} has {rows} rows of hidden states but {names[0]} has {len(layer_names)}; "
                    "probe checkpoints of one model together, and other models separately."
                )
            model_name = model_name or bundle.name
            layer_names = ["embeddings"] + [f"layer {i}" for i in range(1, rows)]
            del bundle  # a checkpoint's model goes before the next one loads
            real, controlled = _fit_probes(features, train, test, [labels, controls], classes)
            del features
            accuracy.append(real)
            control_accuracy.append(controlled)
            names.append(label)
    return ProbeLayersResult(
        model=model_name,
        data=labelled.name,
        pooling=pooling,
        control=control,
        layer_names=layer_names,
        checkpoints=names,
        accuracy=np.stack(accuracy),  # (checkpoints, rows)
        control_accuracy=np.stack(control_accuracy),
        majority=majority,
        train_examples=len(train),
        test_examples=len(test),
        label_names=list(labelled.label_names),
    )


def layer_features(
    bundle: ModelBundle,
    texts: Sequence[str],
    *,
    pooling: Pooling = "mean",
    max_length: int = 128,
    batch_size: int = 32,
    memory_mb: int | None = None,
    bar: Progress | None = None,
) -> np.ndarray:
    """Every row's pooled hidden state of every text, float32 ``(rows, texts, hidden)``; row 0 is the embeddings.

    Texts are cut at ``max_length`` tokens (and the model's positions) and run in batches of
    ``batch_size``, longest first, padded on the right; padding never reaches a text's vector.
    ``bar`` (a tqdm bar) is advanced by the texts done. Raises ``ProbeError`` for a bad option or a
    model that does not return hidden states (an ONNX export), and ``MemoryBudgetError`` before
    the forward when the features and one batch's hidden states would exceed ``memory_mb``.
    """
    _check_pooling(pooling)
    _check_count("max_length", max_length)
    _check_count("batch_size", batch_size)
    from transformers import PreTrainedModel

    if not isinstance(bundle.model, PreTrainedModel):
        raise ProbeError(
            f"Probing reads every layer's hidden states, which {bundle.name} does not return: its model is a "
            f"{type(bundle.model).__name__}, not a transformers PyTorch model (as an ONNX export is not); probe the "
            "PyTorch model it came from."
        )
    tok = bundle.tokenizer
    length_cap = min(max_length, bundle.max_positions)
    ids: list[list[int]] = tok(list(texts), truncation=True, max_length=length_cap, verbose=False)["input_ids"]
    lengths = np.asarray([max(len(i), 1) for i in ids])
    shape = ModelShape.of(bundle.model)
    rows, longest = shape.layers + 1, int(lengths.max(initial=1))
    batch = min(batch_size, max(len(ids), 1))
    features_bytes = 2 * FLOAT * rows * len(ids) * shape.hidden  # the features, and their standardised copy
    batch_bytes = batch * (FLOAT * rows * longest * shape.hidden + shape.layer_bytes(longest))
    require(
        features_bytes + batch_bytes,
        memory_mb,
        f"probing {rows} rows of {bundle.name} on {len(ids):,} texts of up to {longest:,} tokens",
        "fewer texts (max_examples=...), a smaller batch_size or a shorter max_length",
    )
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    base: Any = bundle.model.base_model
    takes_mask = accepts_argument(base, "attention_mask")
    order = np.argsort(-lengths, kind="stable")  # longest first: the first batch is the largest
    out = np.zeros((rows, len(ids), shape.hidden), dtype=np.float32)  # (rows, texts, hidden)
    with inference(bundle.model):
        for start in range(0, len(order), batch):
            chosen = order[start : start + batch]
            width = int(lengths[chosen].max())
            input_ids = torch.full((len(chosen), width), pad, dtype=torch.long)  # (batch, width)
            mask = torch.zeros((len(chosen), width), dtype=torch.long)
            for row, i in enumerate(chosen):
                input_ids[row, : len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
                mask[row, : len(ids[i])] = 1
            inputs = {"input_ids": input_ids.to(bundle.device)}
            if takes_mask:
                inputs["attention_mask"] = mask.to(bundle.device)
            hidden = base(**inputs, output_hidden_states=True).hidden_states  # rows x (batch, width, hidden)
            states = torch.stack(hidden).float()  # (rows, batch, width, hidden)
            if pooling == "cls":
                pooled = states[:, :, 0]  # (rows, batch, hidden): right padding keeps the first token first
            elif pooling == "last":
                last = torch.as_tensor(lengths[chosen] - 1, device=states.device)  # (batch,) each text's last token
                pooled = states[:, torch.arange(len(chosen), device=states.device), last]  # (rows, batch, hidden)
            else:
                weights = mask.to(states.device, torch.float32)[None, :, :, None]  # (1, batch, width, 1)
                pooled = (states * weights).sum(2) / weights.sum(2).clamp_min(1)  # (rows, batch, hidden)
            out[:, chosen] = pooled.cpu().numpy()
            if bar is not None:
                bar.update(len(chosen))
    return out


def _check_options(
    pooling: object,
    control: object,
    test_share: object,
    *,
    max_examples: object,
    max_length: object,
    seed: object,
) -> None:
    """Raise ``ProbeError`` with one sentence for the first option that is not one the probe takes."""
    _check_pooling(pooling)
    if control not in CONTROLS:
        raise ProbeError(
            f"Unknown control task {control!r}; use 'shuffle' (labels permuted across texts) or "
            "'word-type' (a random label per word type)."
        )
    if isinstance(test_share, bool) or not isinstance(test_share, (int, float)) or not 0 < test_share < 1:
        raise ProbeError(f"test_share must be a fraction between 0 and 1 (such as 0.25), not {test_share!r}.")
    if max_examples is not None:
        _check_count("max_examples", max_examples)
    _check_count("max_length", max_length)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ProbeError(f"seed must be a whole number of 0 or more, got {seed!r}.")


def _check_pooling(pooling: object) -> None:
    if pooling not in POOLINGS:
        raise ProbeError(
            f"Unknown pooling {pooling!r}; use 'mean' (every real token), 'cls' (the first token) or 'last' "
            "(the last real token)."
        )


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ProbeError(f"{name} must be a positive whole number, got {value!r}.")


def _check_folder(source: object) -> None:
    """Raise ``ProbeError`` for a folder that holds neither a model nor a run's checkpoints."""
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir() and not (Path(source) / "config.json").exists():
        raise ProbeError(
            f"{source} holds no model and no checkpoint; give a run folder with saved checkpoints, "
            "a checkpoint or model folder (with config.json), a model name or a loaded model."
        )


def _labelled(data: object) -> LabelledData:
    """``data`` as ``LabelledData`` with at least two classes and no empty text; ``DataError`` otherwise."""
    from workbench.data import LabelledData, load_labelled

    labelled = data if isinstance(data, LabelledData) else load_labelled(data)  # type: ignore[arg-type]
    present = sorted(set(labelled.labels))
    if len(present) < 2:
        only = labelled.label_names[present[0]] if present else "none"
        raise DataError(
            f"Every example in {labelled.name!r} has the label {only!r}; a probe needs at least two classes."
        )
    empty = next((i for i, t in enumerate(labelled.texts) if not isinstance(t, str) or not t.strip()), None)
    if empty is not None:
        raise DataError(f"The text of example {empty} in {labelled.name!r} is empty; remove it or give it words.")
    return labelled


def _rng(seed: int, purpose: int) -> np.random.Generator:
    """One generator per purpose (pick, split, control), so changing one never moves another."""
    return np.random.default_rng([seed, purpose])


def _pick(labels: np.ndarray, max_examples: int | None, seed: int) -> np.ndarray:
    """Indices of at most ``max_examples`` examples, in their order, keeping each class's share (seeded)."""
    if max_examples is None or len(labels) <= max_examples:
        return np.arange(len(labels))
    rng = _rng(seed, 0)
    counts = np.bincount(labels)
    quota = counts * max_examples / len(labels)
    take = np.floor(quota).astype(int)
    for c in np.argsort(-(quota - take), kind="stable")[: max_examples - int(take.sum())]:
        take[c] += 1  # the largest remainders get the examples left over
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:n] for c, n in enumerate(take)]
    return np.sort(np.concatenate(chosen))


def _split(labels: np.ndarray, test_share: float, seed: int, label_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, stratified ``(train, test)`` indices; ``DataError`` when a class is too small for either side."""
    rng = _rng(seed, 1)
    train, test = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        held = round(len(members) * test_share)
        if len(members) - held < MIN_TRAIN_PER_CLASS or held < MIN_TEST_PER_CLASS:
            raise DataError(
                f"The class {label_names[c]!r} has {len(members)} examples, {len(members) - held} to train on and "
                f"{held} to test with; a probe needs at least {MIN_TRAIN_PER_CLASS} and {MIN_TEST_PER_CLASS} of "
                "each class: give more examples (or a larger max_examples) or change test_share."
            )
        test.append(members[:held])
        train.append(members[held:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _control_labels(texts: list[str], labels: np.ndarray, control: str, seed: int) -> np.ndarray:
    """Labels that carry nothing of what the texts mean, ``(examples,)``, seeded (Hewitt and Liang 2019).

    "shuffle": the labels permuted across texts (each class keeps its count). "word-type": each word
    type (lower-cased) gets a random label drawn with the labels' distribution and a random rank, and
    a text takes the label of its word type of lowest rank: a function of the words alone, which a probe
    could partly memorise, with about the classes' shares. (A majority vote over the text's words would
    not keep them: on unbalanced data such as sms-spam nearly every text would get the common class.)
    """
    rng = _rng(seed, 2)
    if control == "shuffle":
        return rng.permutation(labels)
    words = [_WORDS.findall(t.lower()) or [t.strip().lower()] for t in texts]
    types = sorted({w for text in words for w in text})  # sorted: the same draws whatever the texts' order
    share = np.bincount(labels) / len(labels)
    drawn = dict(zip(types, rng.choice(len(share), size=len(types), p=share).tolist(), strict=True))
    rank = dict(zip(types, rng.permutation(len(types)).tolist(), strict=True))
    return np.asarray([drawn[min(text, key=rank.__getitem__)] for text in words], dtype=np.int64)


def _fit_probes(
    features: np.ndarray, train: np.ndarray, test: np.ndarray, labellings: list[np.ndarray], classes: int
) -> list[np.ndarray]:
    """Held-out accuracy, ``(rows,)`` per labelling, of a logistic regression fitted per row and labelling.

    Features are standardised with the training split's mean and deviation. Every row and labelling
    (the real labels, the control's) is its own problem: no parameter is shared and Adam's steps are
    per parameter, so fitting them together as one batched problem fits each on its own, with one
    pass over the features per step for all of them. The gradients are written out (softmax minus
    one-hot) so that the features are read in the layout the matrix multiply is fast with: autograd
    reads them transposed, several times slower with two classes. The fit starts at zero and has no
    randomness: the same features and labels give the same accuracies. The L2 penalty keeps a probe
    on few texts from fitting noise units: with 1e-3, one unit that holds the label among 15 of noise,
    on 44 training texts, scored 0.94 held out; with 1e-2, 1.0 (and MiniLM's rows on movie-snippets
    gain 0.01 to 0.03 while their control accuracies stay where they were).
    """
    x = torch.from_numpy(features)  # (rows, examples, hidden)
    train_x = x[:, torch.from_numpy(train)].transpose(1, 2)  # (rows, hidden, train)
    mean = train_x.mean(2, keepdim=True)  # (rows, hidden, 1)
    std = train_x.std(2, keepdim=True)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))  # a constant unit stays 0 and never blows up
    train_x = ((train_x - mean) / std).contiguous()  # (rows, hidden, train)
    test_x = (x[:, torch.from_numpy(test)].transpose(1, 2) - mean) / std  # (rows, hidden, test)
    rows, hidden, n = train_x.shape
    sets = len(labellings)
    one_hot = torch.stack(
        [torch.eye(classes)[torch.from_numpy(y[train])].T for y in labellings]
    )  # (sets, classes, train)
    weight = torch.zeros(rows, sets * classes, hidden)  # (rows, sets * classes, hidden)
    bias = torch.zeros(rows, sets * classes, 1)
    params = (weight, bias)
    first, second = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    beta1, beta2 = 0.9, 0.999
    with torch.no_grad():
        for step in range(1, FIT_STEPS + 1):
            logits = torch.baddbmm(bias, weight, train_x).view(rows, sets, classes, n)  # (rows, sets, classes, train)
            error = (torch.softmax(logits, 2) - one_hot).view(rows, sets * classes, n) / n  # d mean loss / d logits
            grads = (torch.bmm(error, train_x.transpose(1, 2)) + 2 * L2_PENALTY * weight, error.sum(2, keepdim=True))
            rate = FIT_LEARNING_RATE * 0.5 * (1 + math.cos(math.pi * (step - 1) / FIT_STEPS))  # cosine decay
            for p, g, m, v in zip(params, grads, first, second, strict=True):  # Adam (Kingma and Ba 2015)
                m.mul_(beta1).add_(g, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                corrected = (v / (1 - beta2**step)).sqrt_().add_(1e-8)
                p.addcdiv_(m, corrected, value=-rate / (1 - beta1**step))
        predicted = torch.baddbmm(bias, weight, test_x).view(rows, sets, classes, -1).argmax(2)  # (rows, sets, test)
    return [(predicted[:, k] == torch.from_numpy(y[test])).double().mean(1).numpy() for k, y in enumerate(labellings)]
