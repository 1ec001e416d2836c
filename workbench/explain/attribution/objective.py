"""What an attribution explains: one number, the probability of a target, as a function of the input tokens.

An ``Objective`` fixes the text, the target (a classifier's label, the token at a masked
position, or the next token) and how a token is *removed* (replaced by the mask token where
the model has one, deleted otherwise). Every method and every faithfulness score evaluates
the model only through it, so they all measure the same thing.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import torch

from workbench.errors import AttributionError, ProbeError
from workbench.explain.budget import DEFAULT_MEMORY_MB, MB, memory_budget, require
from workbench.explain.footprint import ModelShape
from workbench.explain.inputs import MASK_PLACEHOLDER, check_text, display_token, token_id, with_model_mask
from workbench.explain.output_head import head_only_at, output_vocabulary
from workbench.explain.tokens import TokenInfo, token_info

if TYPE_CHECKING:
    from workbench.explain.attention import AttentionResult
    from workbench.explain.attribution.fast_encoder import FastEncoder
    from workbench.models import ModelBundle

__all__ = ["AttributionError", "MethodOutput", "Objective", "make_objective", "tokenized"]

# What every attribution method returns: a score per token (n,), its details (steps, max_evals, ...), and its route.
MethodOutput: TypeAlias = tuple[np.ndarray, dict[str, Any], str]

# A batch of activations takes a quarter of the budget (256 MB of the default 1 GB); a gradient batch a
# third of that, since backward holds more than the estimate counts.
BATCH_SHARE = 4


@dataclass
class Objective:
    """The probability of ``target`` for ``text`` under ``bundle``, and the ways to change the input."""

    bundle: ModelBundle
    text: str
    task: str  # "classify", "masked-lm" or "causal-lm"
    input_ids: list[int]
    tokens: TokenInfo
    segments: list[str]  # each token's text with the whitespace after it, as shap's Text masker cuts it
    features: np.ndarray  # (n,) bool: the positions an attribution scores and removal may touch
    target: int  # a label index, or a vocabulary id
    target_name: str
    position: int | None  # where a masked-LM target is read; None otherwise
    removal: str  # "mask" (replace by the mask token) or "delete"
    reference_id: int | None  # the id a removed token becomes in "mask" removal
    memory_mb: int = DEFAULT_MEMORY_MB  # the call's budget in MB, resolved once (``memory_budget``)
    note: str = ""
    _fast: FastEncoder | None = field(default=None, repr=False)
    _score: float | None = field(default=None, repr=False)
    attention: AttentionResult | None = field(default=None, repr=False)  # read first where a method needs it
    evaluations: int = 0  # rows the model has scored through this objective

    # --- removing tokens -------------------------------------------------------------------

    def remove(self, drop: np.ndarray) -> list[int]:
        """The input ids with the positions where ``drop`` is True removed (features only)."""
        drop = np.asarray(drop, dtype=bool) & self.features
        reference = self.reference_id
        if self.removal == "mask" and reference is not None:  # "mask" removal always has the mask token's id
            return [reference if d else t for t, d in zip(self.input_ids, drop, strict=True)]
        kept = [t for t, d in zip(self.input_ids, drop, strict=True) if not d]
        if not kept:  # a causal LM still needs one token to predict from: the start of a text
            tok = self.bundle.tokenizer
            start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
            kept = [start if start is not None else self.input_ids[0]]
        return kept

    # --- scoring token ids -----------------------------------------------------------------

    def score(self) -> float:
        """f(x): the target's probability for the whole input (computed once; every method asks for it)."""
        if self._score is None:
            self._score = float(self.score_ids([self.input_ids])[0])
        return self._score

    def score_ids(self, rows: Sequence[Sequence[int]]) -> np.ndarray:
        """The target's probability for each row of token ids, ``(rows,)``; rows may differ in length."""
        return self.outputs_ids(rows)[:, self.target if self.task == "classify" else 0]

    def outputs_ids(self, rows: Sequence[Sequence[int]]) -> np.ndarray:
        """Every label's probability ``(rows, labels)`` for a classifier; the target's ``(rows, 1)`` for an LM.

        Rows are sorted by length and scored in batches sized to ``memory_mb``.
        """
        out = np.empty((len(rows), self.num_outputs), dtype=np.float64)
        if not len(rows):
            return out
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))  # longest first: it sizes its batch
        start = 0
        while start < len(order):
            chunk = order[start : start + self.rows_per_batch(len(rows[order[start]]))]
            out[chunk] = self._forward_ids([rows[i] for i in chunk])
            start += len(chunk)
        self.evaluations += len(rows)
        return out

    @property
    def num_outputs(self) -> int:
        return len(self.bundle.label_names or ()) if self.task == "classify" else 1

    @property
    def shape(self) -> ModelShape:
        return ModelShape.of(self.bundle.model)

    def rows_per_batch(self, length: int, gradients: bool = False) -> int:
        """How many rows of ``length`` tokens one batch scores within its share of the budget (at least 1)."""
        budget = self.memory_mb * MB // BATCH_SHARE // (3 if gradients else 1)
        return max(1, int(budget // max(1, self.shape.row_bytes(length, gradients=gradients))))

    def step_bytes(self, *, gradients: bool = False) -> int:
        """The smallest step of scoring: one row of the whole input forward (with every layer's
        activations kept for backward when ``gradients``), and the output it reads."""
        shape, n = self.shape, len(self.input_ids)
        outputs = self.num_outputs if self.task == "classify" else None  # a language model's whole vocabulary
        embeddings = 2 * n * shape.hidden * 4 if gradients else 0  # the input embeddings and their gradient
        return shape.row_bytes(n, gradients=gradients) + shape.logits_bytes(1, outputs) + embeddings

    def ids_bytes(self, rows: int) -> int:
        """``rows`` copies of the input's token ids, held as lists (and tuples) of Python ints."""
        return rows * len(self.input_ids) * 16

    def require(self, needed: float, method: str, advice: str) -> None:
        """Raise ``MemoryBudgetError`` when ``method`` on this input needs more than the call's budget."""
        require(
            needed,
            self.memory_mb,
            f"{method} on {len(self.input_ids):,} tokens of {self.bundle.name}",
            advice,
        )

    def _pad(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        pad = self.bundle.tokenizer.pad_token_id
        pad = 0 if pad is None else pad
        n = max(len(r) for r in rows)
        ids = torch.full((len(rows), n), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), n), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.as_tensor(list(r), dtype=torch.long)
            mask[i, : len(r)] = 1
        return ids.to(self.bundle.device), mask.to(self.bundle.device)

    def _forward_ids(self, rows: Sequence[Sequence[int]]) -> np.ndarray:
        ids, mask = self._pad(rows)
        if self._fast is not None:
            return self._fast(ids, mask).double().cpu().numpy()
        with torch.no_grad():
            probs = self._probabilities(mask, input_ids=ids)
        return probs.double().cpu().numpy()

    # --- scoring embeddings (for gradients) ------------------------------------------------

    def word_embeddings(self) -> torch.Tensor:
        """The input's word embeddings ``(n, hidden)``, detached."""
        emb = self.bundle.model.get_input_embeddings()
        embedded: torch.Tensor = emb(torch.tensor(self.input_ids, device=self.bundle.device))  # (n, hidden)
        return embedded.detach().float()

    def reference_embeddings(self) -> torch.Tensor:
        """The baseline input ``(n, hidden)``: each feature's embedding replaced by the mask token's
        (or by zeros where the model has no mask token); special tokens kept."""
        x = self.word_embeddings()
        feats = torch.as_tensor(self.features, device=x.device)
        if self.reference_id is not None:
            emb = self.bundle.model.get_input_embeddings()
            ref = emb(torch.tensor([self.reference_id], device=x.device)).detach().float()[0]
        else:
            ref = torch.zeros(x.shape[-1], device=x.device)
        return torch.where(feats[:, None], ref[None, :], x)

    def score_embeddings(self, embeds: torch.Tensor) -> torch.Tensor:
        """The target's probability for a batch of input embeddings ``(batch, n, hidden)``, differentiable."""
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        dtype = next(self.bundle.model.parameters()).dtype
        probs = self._probabilities(mask, inputs_embeds=embeds.to(dtype))
        return probs[:, self.target if self.task == "classify" else 0]

    # --- the model -------------------------------------------------------------------------

    def _probabilities(self, mask: torch.Tensor, **inputs: torch.Tensor) -> torch.Tensor:
        model = self.bundle.model
        if self.task == "classify":
            label_logits: torch.Tensor = model(attention_mask=mask, **inputs).logits  # (batch, labels)
            return label_logits.float().softmax(-1)
        if self.task == "masked-lm" and self.position is not None:  # a masked LM's target is read at its mask
            read = torch.full((mask.shape[0],), self.position, device=mask.device)
        else:
            read = mask.sum(-1) - 1  # the last real token of each row
        with head_only_at(model, read[:, None]):  # the head at one position per row
            logits: torch.Tensor = model(attention_mask=mask, **inputs).logits[:, 0]  # (batch, vocab)
        return logits.float().softmax(-1)[:, self.target : self.target + 1]


@contextlib.contextmanager
def evaluation(model: Any) -> Iterator[None]:
    """Eval mode for the call (no dropout), gradients left on; the model's mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


# --- building an objective -----------------------------------------------------------------

_TASKS = {"classifier": "classify", "masked-lm": "masked-lm", "causal-lm": "causal-lm"}


def make_objective(
    bundle: ModelBundle,
    text: object,
    target: Any = None,
    *,
    memory_mb: int | None = None,
    fast: bool = True,
    prepare: Callable[[Objective], None] | None = None,
) -> Objective:
    """Check ``text`` and ``target`` against ``bundle`` and fix what an attribution will explain.

    ``target`` is a label name or index (classifier), a token string or id (language models),
    or None for the model's own top prediction. ``memory_mb`` is the budget (default: the
    kernel's); ``prepare`` runs once the text is tokenized and before the model runs (where a
    method checks its budget). Raises ``AttributionError`` with a sentence, and
    ``MemoryBudgetError`` for a ``memory_mb`` that is not a positive whole number.
    """
    budget = memory_budget(memory_mb)
    objective = tokenized(bundle, text, budget)
    if prepare is not None:
        prepare(objective)
    objective.target, objective.target_name = _resolve_target(objective, target)
    if fast and objective.task == "classify":
        from workbench.explain.attribution.fast_encoder import FastEncoder

        if FastEncoder.supports(bundle.model) and not bundle.model.training:
            objective._fast = _cached_fast_encoder(bundle.model)
    return objective


def tokenized(bundle: ModelBundle, text: object, memory_mb: int) -> Objective:
    """The objective of ``text`` with its target not yet resolved (0): the model has not run. Raises
    ``AttributionError`` for a bad text or a model without an output to explain."""
    text = check_text(text, "The text to explain", AttributionError)
    task = _TASKS.get(str(getattr(bundle, "kind", "")))
    if task is None:
        raise AttributionError(
            f"Attributions need a classifier, a masked LM or a causal LM; {getattr(bundle, 'name', bundle)!r} "
            f"is a {getattr(bundle, 'kind', type(bundle).__name__)} model. Load it with kind='classifier' "
            "(and fine-tune it) or as a language model."
        )
    tok = bundle.tokenizer
    note = ""
    if task == "masked-lm":
        if tok.mask_token is None:
            raise AttributionError(f"{bundle.name} has no mask token, so it cannot fill a masked position.")
        text = with_model_mask(tok, text)
        if tok.mask_token not in text:
            raise AttributionError(
                f"The text has no mask; put {MASK_PLACEHOLDER} where the model should guess "
                "a word, and the attribution explains that guess."
            )
    enc = tok(text, return_offsets_mapping=True, return_special_tokens_mask=True, verbose=False)
    ids = [int(i) for i in enc["input_ids"]]
    if len(ids) > bundle.max_positions:
        raise AttributionError(
            f"The text is {len(ids)} tokens long but {bundle.name} takes at most {bundle.max_positions}; shorten it."
        )
    info = token_info(tok, enc, text)
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    segments = [text[offsets[i][0] : max(offsets[i][1], offsets[i + 1][0])] for i in range(len(ids) - 1)]
    segments.append(text[offsets[-1][0] : offsets[-1][1]])
    features = ~np.asarray(info.special, dtype=bool)
    position = None
    if task == "masked-lm":
        masks = [i for i, t in enumerate(ids) if t == tok.mask_token_id]
        position = masks[0]
        features[masks] = False  # a mask is what is being explained, not evidence
        if len(masks) > 1:
            note = f"The text has {len(masks)} masks; this explains the first."
    if not features.any():
        raise AttributionError("The text has no tokens to attribute (only special tokens); write some words.")
    removal = "mask" if tok.mask_token_id is not None else "delete"
    reference = tok.mask_token_id if removal == "mask" else None
    return Objective(
        bundle, text, task, ids, info, segments, features, 0, "", position, removal, reference, memory_mb, note
    )


# model -> (weights version, FastEncoder)
_FAST_CACHE: weakref.WeakKeyDictionary[torch.nn.Module, tuple[int, FastEncoder]] = weakref.WeakKeyDictionary()


def _cached_fast_encoder(model: torch.nn.Module) -> FastEncoder:
    """One packed copy per model, rebuilt when its weights change (a fine-tuning step moves them).

    Held weakly: when the model goes, its packed copy goes with it.
    """
    from workbench.explain.attribution.fast_encoder import FastEncoder

    version = sum(p._version for p in model.parameters())
    hit = _FAST_CACHE.get(model)
    if hit is not None and hit[0] == version:
        return hit[1]
    fast = FastEncoder(model)
    _FAST_CACHE[model] = (version, fast)
    return fast


def _resolve_target(obj: Objective, target: Any) -> tuple[int, str]:
    bundle, tok = obj.bundle, obj.bundle.tokenizer
    if obj.task == "classify":
        names = bundle.label_names or []
        if target is None:
            with torch.no_grad(), evaluation(bundle.model):
                probs = obj._forward_ids([obj.input_ids])[0]
            index = int(np.argmax(probs))
            return index, names[index] if index < len(names) else str(index)
        if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
            if not 0 <= int(target) < len(names):
                raise AttributionError(
                    f"Label {int(target)} is out of range: {bundle.name} has {len(names)} labels "
                    f"({', '.join(names)}); use 0 to {len(names) - 1} or a name."
                )
            return int(target), names[int(target)]
        if isinstance(target, str):
            if target not in names:
                raise AttributionError(f"{target!r} is not one of {bundle.name}'s labels: {', '.join(names)}.")
            return names.index(target), target
        raise AttributionError(f"A classifier's target is a label name or index, got {type(target).__name__}.")
    if target is None:
        with torch.no_grad(), evaluation(bundle.model):
            mask = torch.ones((1, len(obj.input_ids)), dtype=torch.long, device=bundle.device)
            read = torch.tensor([obj.position if obj.task == "masked-lm" else len(obj.input_ids) - 1])
            with head_only_at(bundle.model, read[:, None]):
                logits = bundle.model(
                    input_ids=torch.tensor([obj.input_ids], device=bundle.device), attention_mask=mask
                ).logits[0, 0]
        index = int(logits.argmax())
        return index, display_token(tok, index)
    try:
        index = token_id(tok, target, output_vocabulary(bundle.model))
    except ProbeError as e:
        raise AttributionError(str(e)) from None
    return index, display_token(tok, index)
