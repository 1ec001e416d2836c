"""compare_models: what compression changed — size, speed, the task metric, and what the model looks at."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from workbench.compress.agreement import (
    attention_drift,
    attribution_agreement,
    drift_pairing,
    require_attribution_budget,
    require_drift_budget,
)
from workbench.errors import CompressionError
from workbench.explain.budget import MB, memory_budget, require
from workbench.explain.footprint import ModelShape
from workbench.models import ModelBundle

__all__ = ["CompressionReport", "compare_models"]


@dataclass
class CompressionReport:
    """Two models side by side. ``attention_js`` is (layers, heads): the Jensen–Shannon divergence
    (bits, 0 = the same, 1 = disjoint) between the two models' attention rows, averaged over
    queries and texts; its row ``i`` is the compressed model's layer ``i`` against the original's layer
    ``drift_layers[i]`` (a distilled student's layer against the teacher layer it was copied from), and
    ``drift_note`` says why it is empty where texts were given. ``spearman`` holds one rank correlation of
    the token attributions per text."""

    original: str
    compressed: str
    compression: dict[str, Any]
    size_bytes: dict[str, int]  # {"original": int, "compressed": int}
    latency_ms: dict[str, dict[int, float]]  # {"original": {length: ms}, "compressed": {length: ms}}
    metric: str | None  # "accuracy", "perplexity" or None (no eval_data, or an encoder)
    metric_values: dict[str, float]  # {"original": float, "compressed": float}
    prediction_agreement: float | None  # classifiers: share of eval examples both models label alike
    attention_js: np.ndarray  # (layers, heads)
    attribution_method: str
    spearman: list[float]
    texts: list[str]
    examples: list[dict[str, Any]] = field(default_factory=list)  # per text: segments and both models' scores
    drift_layers: list[int] = field(default_factory=list)  # the original's layer compared with each row
    drift_note: str = ""  # why there is no attention drift although texts were given ("" otherwise)

    @property
    def size_ratio(self) -> float:
        return self.size_bytes["compressed"] / self.size_bytes["original"]

    def speedup(self, length: int) -> float:
        return self.latency_ms["original"][length] / self.latency_ms["compressed"][length]

    @property
    def metric_delta(self) -> float | None:
        if self.metric is None:
            return None
        return self.metric_values["compressed"] - self.metric_values["original"]

    @property
    def attention_drift(self) -> float:
        return float(self.attention_js.mean()) if self.attention_js.size else math.nan

    @property
    def mean_spearman(self) -> float:
        values = [s for s in self.spearman if not math.isnan(s)]
        return float(np.mean(values)) if values else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "compressed": self.compressed,
            "compression": self.compression,
            "size_bytes": self.size_bytes,
            "size_ratio": self.size_ratio,
            "latency_ms": {k: {str(n): ms for n, ms in v.items()} for k, v in self.latency_ms.items()},
            "speedup": {str(n): self.speedup(n) for n in self.latency_ms["original"]},
            "metric": self.metric,
            "metric_values": self.metric_values,
            "metric_delta": self.metric_delta,
            "prediction_agreement": self.prediction_agreement,
            "attention_js": self.attention_js.tolist(),
            "attention_drift": self.attention_drift,
            "attribution_method": self.attribution_method,
            "spearman": self.spearman,
            "mean_spearman": self.mean_spearman,
            "texts": self.texts,
            "examples": self.examples,
            "drift_layers": self.drift_layers,
            "drift_note": self.drift_note,
        }

    def __str__(self) -> str:
        rows = [
            ("", "original", "compressed", "change"),
            (
                "weights (MB)",
                f"{self.size_bytes['original'] / 1e6:.2f}",
                f"{self.size_bytes['compressed'] / 1e6:.2f}",
                f"x{self.size_ratio:.2f}",
            ),
        ]
        for n in self.latency_ms["original"]:
            speed = self.speedup(n)
            rows.append(
                (
                    f"latency @{n} tokens (ms)",
                    f"{self.latency_ms['original'][n]:.2f}",
                    f"{self.latency_ms['compressed'][n]:.2f}",
                    f"{speed:.2f}x faster" if speed >= 1 else f"{1 / speed:.2f}x slower",
                )
            )
        if self.metric:
            rows.append(
                (
                    self.metric,
                    f"{self.metric_values['original']:.4f}",
                    f"{self.metric_values['compressed']:.4f}",
                    f"{self.metric_delta:+.4f}",
                )
            )
        if self.prediction_agreement is not None:
            rows.append(("same prediction", "", "", f"{self.prediction_agreement:.1%}"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [f"{self.original} -> {self.compressed}"]
        lines += [
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in rows
        ]
        if self.attention_js.size:
            layer, head = np.unravel_index(int(self.attention_js.argmax()), self.attention_js.shape)
            paired = self.drift_layers and self.drift_layers != list(range(len(self.drift_layers)))
            where = f"layer {layer} (original's layer {self.drift_layers[layer]})" if paired else f"layer {layer}"
            lines.append(
                f"attention drift (Jensen-Shannon, bits): mean {self.attention_drift:.4f}, "
                f"largest {self.attention_js.max():.4f} at {where}, head {head}"
            )
        elif self.drift_note:
            lines.append(f"attention drift: not measured ({self.drift_note})")
        if self.spearman:
            mean = self.mean_spearman
            shown = f"mean {mean:.3f}" if not math.isnan(mean) else "undefined (an attribution was flat: no ranking)"
            lines.append(
                f"attribution agreement ({self.attribution_method}, Spearman): {shown} "
                f"over {len(self.spearman)} text(s)"
            )
        return "\n".join(lines)


def _check_pair(original: ModelBundle, compressed: ModelBundle) -> None:
    for role, bundle in (("original", original), ("compressed", compressed)):
        if not isinstance(bundle, ModelBundle):
            raise CompressionError(f"compare_models takes two ModelBundles; the {role} is a {type(bundle).__name__}.")
    a, b = original.model.config, compressed.model.config
    same_vocabulary = getattr(a, "vocab_size", None) == getattr(b, "vocab_size", None) and original.shares_vocabulary(
        compressed
    )
    diff = [] if same_vocabulary else ["vocabulary"]
    if diff or original.kind != compressed.kind:
        raise CompressionError(
            f"{original.name} and {compressed.name} are not one model before and after "
            f"compression, nor a teacher and its student (they differ in {', '.join(diff) or 'kind'}); compare a "
            "model with its own compressed copy, or a teacher with a student of its kind and tokenizer."
        )


def compare_models(
    original: ModelBundle,
    compressed: ModelBundle,
    eval_data: Any = None,  # LabelledData, Corpus, or what load_labelled / load_corpus take; None: no metric
    texts: Sequence[str] = (),
    *,
    lengths: Sequence[int] = (16, 64, 128),
    repeats: int = 15,
    attribution: str = "occlusion",
    max_eval: int | None = None,
    memory_mb: int | None = None,
) -> CompressionReport:
    """Compare a model with its compressed copy, or a teacher (``original``) with its distilled student.

    The two must be of one kind and one vocabulary. Attention drift pairs each layer with the one it
    came from (``drift_pairing``): one for one, or a student's layer with the teacher layer
    ``every_other_layer`` copied it from; where no pairing fits it is left empty and the report's
    ``drift_note`` says why. Raises ``CompressionError`` for a pair of another kind or vocabulary.

    ``eval_data``: labelled data (a classifier: accuracy) or texts (a language model:
    perplexity); None skips the metric. ``texts``: a few inputs on which to compare attention
    (per head) and token attributions (``attribution`` names the method; occlusion runs on
    every kind of compressed model, ONNX included). ``lengths``: input lengths, in tokens, at
    which the median CPU latency of one input is measured over ``repeats`` runs.

    ``memory_mb`` (default: the kernel's budget) bounds every part: the metric's batches are sized to
    it, and before anything runs each part's smallest step is checked against it (one row of the
    metric, the longest latency input, both models' full attention maps of the longest text, one
    attribution step); ``MemoryBudgetError`` says which does not fit.
    """
    from workbench.compress.operations import weights_bytes

    _check_pair(original, compressed)
    budget = memory_budget(memory_mb)
    texts = _check_texts(texts)
    lengths = sorted({min(int(n), original.max_positions) for n in lengths})
    if not lengths or lengths[0] < 2:
        raise CompressionError("lengths must hold input lengths of at least 2 tokens, such as (16, 64, 128).")
    _require_forward(original, lengths[-1], budget, "measuring latency", "shorter lengths")
    if eval_data is not None and original.kind != "encoder":
        _require_forward(original, _EVAL_LENGTH, budget, "the evaluation metric", "eval_data=None (no metric)")
    require_drift_budget(original, texts, budget)
    require_attribution_budget(original, compressed, texts, attribution, budget)
    metric, values, agreement = _metric(original, compressed, eval_data, max_eval, budget)
    drift_layers, drift_note = drift_pairing(original, compressed)
    if drift_layers:
        js = attention_drift(original, compressed, texts, layers=drift_layers, memory_mb=budget)
    else:
        js = np.zeros((0, 0))
    distillation = compressed.extra.get("distillation")
    spearman, examples = attribution_agreement(original, compressed, texts, attribution, memory_mb=budget)
    return CompressionReport(
        original=original.name,
        compressed=compressed.name,
        compression=compressed.compression or ({"method": "distillation", **distillation} if distillation else {}),
        size_bytes={"original": weights_bytes(original), "compressed": weights_bytes(compressed)},
        latency_ms={
            "original": _latency(original, lengths, repeats),
            "compressed": _latency(compressed, lengths, repeats),
        },
        metric=metric,
        metric_values=values,
        prediction_agreement=agreement,
        attention_js=js,
        attribution_method=attribution,
        spearman=spearman,
        texts=list(texts),
        examples=examples,
        drift_layers=drift_layers if texts else [],
        drift_note=drift_note if texts else "",
    )


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    from workbench.explain.inputs import check_text

    if texts is not None and not isinstance(texts, (list, tuple)):
        raise CompressionError(f"texts must be a list of strings, got {type(texts).__name__}.")
    return [check_text(t, "Each of texts", CompressionError) for t in texts or ()]


# --------------------------------------------------------------------------------- the metric


_EVAL_LENGTH = 128  # tokens: evaluation texts are cut here
BATCH_SHARE = 4  # an evaluation batch takes a quarter of the budget


def _row_bytes(bundle: ModelBundle, length: int) -> int:
    """One input of ``length`` tokens forward: one layer's activations and the logits (a classifier's
    labels; a language model's vocabulary at every position)."""
    shape = ModelShape.of(bundle.model)
    length = min(length, bundle.max_positions)
    if bundle.kind == "classifier":
        return shape.layer_bytes(length) + shape.logits_bytes(1, len(bundle.label_names or ()) or 2)
    return shape.layer_bytes(length) + shape.logits_bytes(length)


def _require_forward(bundle: ModelBundle, length: int, memory_mb: int, what: str, advice: str) -> None:
    n = min(length, bundle.max_positions)
    require(_row_bytes(bundle, n), memory_mb, f"{what} on {n:,} tokens of {bundle.name}", advice)


def _batch_size(bundle: ModelBundle, most: int, memory_mb: int) -> int:
    """Up to ``most`` evaluation inputs per batch, as many as a quarter of the budget holds (at least 1)."""
    return max(1, min(most, memory_mb * MB // BATCH_SHARE // _row_bytes(bundle, _EVAL_LENGTH)))


def _metric(
    original: ModelBundle, compressed: ModelBundle, eval_data: Any, max_eval: int | None, memory_mb: int
) -> tuple[str | None, dict[str, float], float | None]:
    if eval_data is None or original.kind == "encoder":
        return None, {}, None
    if original.kind == "classifier":
        from workbench.data import LabelledData, load_labelled

        data = eval_data if isinstance(eval_data, LabelledData) else load_labelled(eval_data)
        texts, labels = data.texts[:max_eval], np.asarray(data.labels[:max_eval])
        if not texts:
            raise CompressionError("eval_data holds no examples; give some labelled texts, or None to skip it.")
        preds = [_predictions(b, texts, _batch_size(b, 16, memory_mb)) for b in (original, compressed)]
        values = {role: float((p == labels).mean()) for role, p in zip(("original", "compressed"), preds, strict=True)}
        return "accuracy", values, float((preds[0] == preds[1]).mean())
    from workbench.data import load_corpus

    texts = eval_data.texts if hasattr(eval_data, "texts") else load_corpus(eval_data).texts
    texts = [t for t in texts if t.strip()][:max_eval]
    if not texts:
        raise CompressionError("eval_data holds no text; give some texts, or None to skip the metric.")
    return (
        "perplexity",
        {
            role: _perplexity(b, texts, _batch_size(b, 8, memory_mb))
            for role, b in (("original", original), ("compressed", compressed))
        },
        None,
    )


def _batches(
    bundle: ModelBundle, texts: Sequence[str], size: int, max_length: int = _EVAL_LENGTH
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    length = min(max_length, bundle.max_positions)
    for i in range(0, len(texts), size):
        enc = bundle.tokenizer(
            list(texts[i : i + size]), return_tensors="pt", padding=True, truncation=True, max_length=length
        )
        yield enc["input_ids"], enc["attention_mask"]


def _predictions(bundle: ModelBundle, texts: Sequence[str], size: int) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for ids, mask in _batches(bundle, texts, size):
            out.append(bundle.model(input_ids=ids, attention_mask=mask).logits.argmax(-1).numpy())
    return np.concatenate(out)


def _perplexity(bundle: ModelBundle, texts: Sequence[str], size: int) -> float:
    """exp(mean loss): next-token loss for a causal LM; for a masked LM, the loss at 15% of the tokens,
    masked the same way (a fixed seed) for both models."""
    tok = bundle.tokenizer
    total, count = 0.0, 0
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for ids, mask in _batches(bundle, texts, size):
            if bundle.kind == "causal-lm":
                logits = bundle.model(input_ids=ids, attention_mask=mask).logits[:, :-1]
                targets, keep = ids[:, 1:], mask[:, 1:].bool()
            else:
                special = torch.isin(ids, torch.tensor(tok.all_special_ids)) | ~mask.bool()
                chosen = (torch.rand(ids.shape, generator=generator) < 0.15) & ~special
                targets, keep = ids, chosen
                inputs = torch.where(chosen, torch.full_like(ids, tok.mask_token_id), ids)
                logits = bundle.model(input_ids=inputs, attention_mask=mask).logits
            losses = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")
            total += float(losses[keep].sum())
            count += int(keep.sum())
    return math.exp(total / max(count, 1)) if count else math.nan


# ------------------------------------------------------------------------------------- speed


def _latency(bundle: ModelBundle, lengths: Sequence[int], repeats: int) -> dict[int, float]:
    """Median milliseconds of one forward pass on one input of each length (CPU, this process's threads)."""
    vocab = len(bundle.tokenizer)
    generator = torch.Generator().manual_seed(0)
    out = {}
    with torch.inference_mode():
        for n in lengths:
            ids = torch.randint(min(1000, vocab // 2), vocab, (1, n), generator=generator)
            mask = torch.ones_like(ids)
            for _ in range(2):
                bundle.model(input_ids=ids, attention_mask=mask)
            times = []
            for _ in range(max(1, repeats)):
                start = time.perf_counter()
                bundle.model(input_ids=ids, attention_mask=mask)
                times.append((time.perf_counter() - start) * 1000)
            out[n] = statistics.median(times)
    return out
