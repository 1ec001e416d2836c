"""Ablation: knock attention heads out of a run and measure how the output moves.

A head is ablated at its ``head`` site (its slice of the attention's output before the output
projection mixes the heads): ``kind="zero"`` sets it to 0 at every position, ``kind="mean"``
replaces it at every position with its mean over every position of ``reference`` texts (default:
the text itself), which keeps the activation's typical size and removes only what depends on this input.

The metric is read where the model predicts: after the last token of a causal LM, at the first
mask of a masked LM. By default it is the probability of the model's own top token there.

Example::

    result = ablate(bundle, "The Eiffel Tower is located in the city of", [(3, 5), "4.1"])
    result.metric_before, result.metric_after       # probability(' Paris') with and without the heads
    effects = ablate_each_head(bundle, "The Eiffel Tower is located in the city of")
    effects.top(3)                                   # the heads whose loss moves the metric most
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import torch

from workbench.errors import ProbeError
from workbench.explain.budget import MB, memory_budget, require
from workbench.explain.footprint import ModelShape
from workbench.explain.inputs import (
    MASK_PLACEHOLDER,
    check_text,
    check_top_k,
    display_token,
    encode,
    inference,
    with_model_mask,
)
from workbench.explain.metrics import BoundMetric, bind_metric
from workbench.explain.output_head import head_only_at
from workbench.explain.patching_result import PatchingResult
from workbench.explain.probe import TokenPrediction
from workbench.explain.sites import Site, Writer, hooked, site_map, start_at
from workbench.explain.tokens import text_tokens

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["AblationKind", "AblationResult", "ablate", "ablate_each_head", "head_means", "parse_heads"]

AblationKind = Literal["zero", "mean"]
ABLATION_KINDS: tuple[AblationKind, ...] = get_args(AblationKind)
BATCH_SHARE = 2  # the share of the memory budget one batch of ablated copies may take


@dataclass
class AblationResult:
    """The metric and the top predictions of one text before and after ablating ``heads`` together."""

    model: str
    text: str
    heads: list[tuple[int, int]]  # (layer, head), in the order given
    kind: AblationKind
    metric: str  # e.g. "probability(' Paris')"
    metric_before: float
    metric_after: float
    position: int  # the token position the metric and predictions are read at
    before: TokenPrediction
    after: TokenPrediction
    reference: list[str] | None = None  # mean ablation: the texts the means come from (None: the text itself)

    @property
    def change(self) -> float:
        """``metric_after - metric_before``: negative when the heads helped the metric."""
        return self.metric_after - self.metric_before

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "text": self.text,
            "heads": [list(h) for h in self.heads],
            "kind": self.kind,
            "metric": self.metric,
            "metric_before": self.metric_before,
            "metric_after": self.metric_after,
            "change": self.change,
            "position": self.position,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "reference": self.reference,
        }

    def __repr__(self) -> str:
        heads = ", ".join(f"{layer}.{head}" for layer, head in self.heads) or "none"

        def top(p: TokenPrediction) -> str:
            return ", ".join(f"{t!r} {v:.3f}" for t, v in zip(p.tokens[:3], p.probabilities[:3], strict=True))

        return (
            f"AblationResult({self.model}, {self.kind}-ablating heads {heads}: {self.metric} "
            f"{self.metric_before:.4g} -> {self.metric_after:.4g} ({self.change:+.4g}); "
            f"top before: {top(self.before)}; after: {top(self.after)})"
        )


_HEAD_NAME = re.compile(r"^(?:head\.)?(\d+)\.(\d+)$")


def parse_heads(model: torch.nn.Module, heads: object) -> list[Site]:
    """Head sites from ``[(layer, head), ...]``, names like ``"3.5"`` or ``"head.3.5"``, or :class:`Site` s
    (one of them alone also works; an empty list is no heads). Raises ``ProbeError`` with a sentence for
    anything else or a layer or head out of range."""
    found = site_map(model)
    single = isinstance(heads, (str, Site)) or (
        isinstance(heads, tuple) and len(heads) == 2 and all(_is_index(i) for i in heads)
    )
    items = [heads] if single else heads
    if not isinstance(items, (list, tuple)):
        raise ProbeError(f"Heads are a list of (layer, head) pairs or names like '3.5'; got {type(heads).__name__}.")
    out: list[Site] = []
    for item in items:
        if isinstance(item, Site) and item.kind == "head":
            out.append(found.check(item))
            continue
        match = _HEAD_NAME.match(item) if isinstance(item, str) else None
        if match is not None:
            pair: tuple[int, int] = (int(match.group(1)), int(match.group(2)))
        elif isinstance(item, (tuple, list)) and len(item) == 2 and all(_is_index(i) for i in item):
            pair = (int(item[0]), int(item[1]))
        else:
            raise ProbeError(f"A head is a (layer, head) pair of integers or a name like '3.5'; got {item!r}.")
        out.append(found.check(Site("head", *pair)))
    return list(dict.fromkeys(out))


def _is_index(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass
class _Reading:
    """One text made ready for the model: its encoding and the position where the metric reads the logits."""

    model_text: str
    enc: dict[str, torch.Tensor]
    position: int


def _reading(bundle: ModelBundle, text: object, call: str) -> _Reading:
    text = check_text(text)
    tok = bundle.tokenizer
    if bundle.kind == "causal-lm":
        enc = encode(bundle, text)
        return _Reading(text, enc, enc["input_ids"].shape[1] - 1)
    if bundle.kind == "masked-lm" and tok.mask_token is not None:
        model_text = with_model_mask(tok, text)
        enc = encode(bundle, model_text)
        masks = (enc["input_ids"][0] == tok.mask_token_id).nonzero().flatten().tolist()
        if not masks:
            raise ProbeError(f"The text has no mask; put {MASK_PLACEHOLDER} where the model should guess a word.")
        return _Reading(model_text, enc, masks[0])
    raise ProbeError(f"{call} needs a masked or causal language model; {bundle.name} is a {bundle.kind} model.")


def _logits(
    bundle: ModelBundle,
    reading: _Reading,
    writers: list[tuple[Site, Writer]],
    rows: int = 1,
    start: tuple[int, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The logits at the read position of ``rows`` copies of the text run with ``writers``: ``(rows, vocab)``.

    ``start=(layer, stream)`` enters ``layer`` with ``stream`` ``(1, positions, hidden)`` (the plain run's,
    cached) and skips the layers before it, which no writer changes."""
    batch = {k: v.expand(rows, *v.shape[1:]) for k, v in reading.enc.items()}
    where = torch.full((rows, 1), reading.position)
    with contextlib.ExitStack() as stack:
        stack.enter_context(inference(bundle.model))
        if start is not None:
            stack.enter_context(start_at(bundle.model, start[0], start[1].expand(rows, -1, -1)))
        stack.enter_context(hooked(bundle.model, writers))
        stack.enter_context(head_only_at(bundle.model, where))
        logits: torch.Tensor = bundle.model(**batch).logits[:, 0].float()  # (rows, vocab)
        return logits


def _reference_texts(reference: object, kind: str, call: str) -> list[str] | None:
    if reference is None:
        return None
    if kind != "mean":
        raise ProbeError(f"{call} reads reference texts only for kind='mean'; drop reference or ask for kind='mean'.")
    texts = [reference] if isinstance(reference, str) else reference
    if not isinstance(texts, (list, tuple)) or not texts:
        shown = f"an empty {type(texts).__name__}" if isinstance(texts, (list, tuple)) else type(texts).__name__
        raise ProbeError(f"reference is a text or a non-empty list of texts; got {shown}.")
    return [check_text(t, "A reference text") for t in texts]


def head_means(bundle: ModelBundle, texts: Sequence[str], heads: Sequence[Site]) -> dict[Site, torch.Tensor]:
    """Each head's output averaged over every position of every text (all positions pooled): ``(head_dim,)``."""
    sums: dict[Site, torch.Tensor] = {}
    count = 0

    def adder(site: Site) -> Writer:
        def add(x: torch.Tensor) -> None:
            total = x[0].float().sum(0)  # (head_dim,)
            sums[site] = sums[site] + total if site in sums else total

        return add

    for text in texts:
        enc = encode(bundle, with_model_mask(bundle.tokenizer, text))
        with inference(bundle.model), hooked(bundle.model, [(s, adder(s)) for s in heads]):
            bundle.model(**enc)
        count += enc["input_ids"].shape[1]
    return {s: (sums[s] / count).float() for s in heads}


def _ablator(kind: str, mean: torch.Tensor | None, rows: torch.Tensor | None = None) -> Writer:
    """A writer that replaces a head's output by 0 or ``mean``, in every row or only where ``rows`` (batch,)."""

    def write(x: torch.Tensor) -> torch.Tensor:
        replacement = torch.zeros_like(x) if kind == "zero" else mean.to(x.dtype).expand_as(x)  # type: ignore[union-attr]
        if rows is None:
            return replacement
        return torch.where(rows.to(x.device).view(-1, *([1] * (x.dim() - 1))), replacement, x)

    return write


def _check_kind(kind: object) -> AblationKind:
    if kind not in ABLATION_KINDS:
        raise ProbeError(f"kind must be 'zero' or 'mean', got {kind!r}.")
    return kind


def _bound_target(bundle: ModelBundle, target: object, plain: torch.Tensor) -> BoundMetric:
    """``target`` tied to the vocabulary; ``None`` means the probability of the plain run's top token."""
    return bind_metric(bundle, int(plain[0].argmax()) if target is None else target)


def _top(bundle: ModelBundle, logits: torch.Tensor, position: int, top_k: int) -> TokenPrediction:
    probs = logits.softmax(-1)  # (vocab,)
    values, ids = probs.topk(min(top_k, probs.shape[-1]))
    id_list = [int(i) for i in ids]
    return TokenPrediction(
        position, [display_token(bundle.tokenizer, i) for i in id_list], id_list, values.cpu().numpy()
    )


def _require(bundle: ModelBundle, reading: _Reading, rows: int, memory_mb: int | None, what: str) -> int:
    """Check one run fits the budget; return how many ablated copies one forward may hold (1..``rows``)."""
    shape = ModelShape.of(bundle.model)
    n = reading.enc["input_ids"].shape[1]
    per_row = shape.layer_bytes(n) + shape.logits_bytes(1) + n * shape.hidden * 4  # a layer, the logits, the stream
    cached = shape.layers * n * shape.hidden * 4 if rows > 1 else 0  # the plain run's stream entering each layer
    require(per_row + cached, memory_mb, f"{what} on {n:,} tokens of {bundle.name}", "a shorter text")
    return max(1, min(rows, (memory_budget(memory_mb) * MB // BATCH_SHARE - cached) // per_row))


def ablate(
    bundle: ModelBundle,
    text: str,
    heads: object,
    *,
    kind: AblationKind = "zero",
    target: object = None,
    reference: object = None,
    top_k: int = 5,
    memory_mb: int | None = None,
) -> AblationResult:
    """The metric and top-``top_k`` predictions of ``text`` before and after ablating ``heads`` together.

    ``heads``: ``[(layer, head), ...]`` or names like ``"3.5"``; the options are keyword-only. ``target``: a
    metric spec for :func:`~workbench.explain.metrics.bind_metric` (a token: its probability; a pair: their
    logit difference; a Metric; a function of the logits), default the probability of the model's own top
    token. Raises ``ProbeError`` with a sentence for a model that is not a language model, bad text,
    a head out of range, an unknown kind or metric; ``MemoryBudgetError`` when one run would not fit.
    """
    kind = _check_kind(kind)
    top_k = check_top_k(top_k)
    reading = _reading(bundle, text, "ablate")
    sites = parse_heads(bundle.model, heads)
    references = _reference_texts(reference, kind, "ablate")
    _require(bundle, reading, 1, memory_mb, "ablating heads")
    means = head_means(bundle, references or [reading.model_text], sites) if kind == "mean" else {}
    plain = _logits(bundle, reading, [])
    metric = _bound_target(bundle, target, plain)
    ablated = _logits(bundle, reading, [(s, _ablator(kind, means.get(s))) for s in sites])
    return AblationResult(
        model=bundle.name,
        text=text,
        heads=[(s.layer, s.head or 0) for s in sites],
        kind=kind,
        metric=metric.name,
        metric_before=float(metric(plain)[0]),
        metric_after=float(metric(ablated)[0]),
        position=reading.position,
        before=_top(bundle, plain[0], reading.position, top_k),
        after=_top(bundle, ablated[0], reading.position, top_k),
        reference=references,
    )


def ablate_each_head(
    bundle: ModelBundle,
    text: str,
    *,
    target: object = None,
    kind: AblationKind = "zero",
    reference: object = None,
    memory_mb: int | None = None,
) -> PatchingResult:
    """A map of what each head does alone: ``values[layer, head]`` is the metric with that head ablated
    minus the plain run's metric (negative: the head helped). The heads of one layer run as copies in one
    forward that starts at their layer from the plain run's stream there.

    Takes ``target``, ``kind`` and ``reference`` (keyword-only) as :func:`ablate` does and raises as it does. Returns a
    :class:`PatchingResult` with ``method="ablation"``, ``kind="head"``; its ``clean_metric`` and
    ``corrupted_metric`` are both the plain run's metric (an ablation map has no corrupted run).
    """
    kind = _check_kind(kind)
    reading = _reading(bundle, text, "ablate_each_head")
    references = _reference_texts(reference, kind, "ablate_each_head")
    found = site_map(bundle.model)
    sites = found.all_sites(("head",))
    per_batch = _require(bundle, reading, len(sites), memory_mb, "ablating each head")
    means = head_means(bundle, references or [reading.model_text], sites) if kind == "mean" else {}
    entering: dict[int, torch.Tensor] = {}  # layer -> the plain run's stream entering it, (1, positions, hidden)
    keepers = [(Site("resid_pre", layer), _keeper(entering, layer)) for layer in range(found.num_layers)]
    plain = _logits(bundle, reading, keepers)  # reading changes nothing: the logits are the plain run's
    metric = _bound_target(bundle, target, plain)
    plain_metric = float(metric(plain)[0])
    effects = np.zeros(len(sites), dtype=np.float32)
    # A head changes nothing before its layer: each batch holds heads of one layer and starts there.
    for first in range(0, len(sites), found.num_heads):
        layer = sites[first].layer
        for start in range(first, first + found.num_heads, per_batch):
            chunk = sites[start : min(start + per_batch, first + found.num_heads)]  # row i ablates chunk[i] alone
            writers = [(s, _ablator(kind, means.get(s), _one_row(i, len(chunk)))) for i, s in enumerate(chunk)]
            logits = _logits(bundle, reading, writers, rows=len(chunk), start=(layer, entering[layer]))
            effects[start : start + len(chunk)] = metric(logits).cpu().numpy() - plain_metric  # (rows,)
    note = (
        f"{kind} ablation of each head alone; a value is the metric with that head ablated minus the plain "
        f"run's {plain_metric:.4g}" + (f", means over {len(references)} reference texts" if references else "")
    )
    return PatchingResult(
        model=bundle.name,
        method="ablation",
        kind="head",
        metric=metric.name,
        clean=text,
        clean_tokens=text_tokens(bundle, reading.model_text),
        values=effects.reshape(found.num_layers, found.num_heads),  # (layers, heads)
        layers=list(range(found.num_layers)),
        columns=list(range(found.num_heads)),
        clean_metric=plain_metric,
        corrupted_metric=plain_metric,
        patched_positions=list(range(reading.enc["input_ids"].shape[1])),  # a head is ablated at every position
        read_position=reading.position,
        note=note,
    )


def _keeper(kept: dict[int, torch.Tensor], layer: int) -> Writer:
    def keep(x: torch.Tensor) -> None:
        kept[layer] = x.clone()

    return keep


def _one_row(index: int, rows: int) -> torch.Tensor:
    mask = torch.zeros(rows, dtype=torch.bool)
    mask[index] = True
    return mask
