"""The sentence-pair probe: P(is next) or P(in order) for any two texts, from a trained pair head.

The head is the one ``Trainer(bundle, "next-sentence", corpus)`` (or ``"sentence-order"``) trained and keeps in
``bundle.heads``; the pair is written as in training, ``[CLS] first [SEP] second [SEP]``.

Example::

    result = sentence_pair(bundle, "To be, or not to be.", "That is the question.")
    result.probability   # 0.93: P(the second follows the first)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from workbench.data.sentence_pairs import PAIR_OBJECTIVES, pair_ids, takes_segment_ids
from workbench.errors import DataError, ProbeError
from workbench.explain.inputs import check_text, inference
from workbench.explain.tokens import token_info

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["SentencePairResult", "sentence_pair"]

# What label 1 ("as written") and label 0 mean for each pair task.
_READINGS = {"next-sentence": ("not next", "is next"), "sentence-order": ("swapped", "in order")}


@dataclass
class SentencePairResult:
    """A pair head's reading of ``first`` then ``second``.

    ``probability`` is P(as written): the second text follows the first (``task="next-sentence"``) or the two
    are in their order (``"sentence-order"``). ``tokens`` are the pair's tokens as a reader writes them,
    ``segments`` each token's segment (0: ``[CLS] first [SEP]``, 1: ``second [SEP]``), ``special`` marks
    [CLS] and [SEP]."""

    task: str
    model: str
    first: str
    second: str
    probability: float
    tokens: list[str]
    segments: list[int]
    special: list[bool]

    @property
    def label(self) -> str:
        """The likelier reading in words: "is next" / "not next", or "in order" / "swapped"."""
        return _READINGS[self.task][int(self.probability >= 0.5)]

    @property
    def as_written(self) -> str:
        """What ``probability`` is the probability of, in words ("is next", "in order")."""
        return _READINGS[self.task][1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "first": self.first,
            "second": self.second,
            "probability": self.probability,
            "label": self.label,
            "tokens": list(self.tokens),
            "segments": list(self.segments),
            "special": list(self.special),
        }

    def __str__(self) -> str:
        return f"P({self.as_written}) = {self.probability:.3f}: {self.first!r} → {self.second!r}"


def sentence_pair(bundle: ModelBundle, first: str, second: str, *, task: str | None = None) -> SentencePairResult:
    """How likely ``second`` follows ``first`` (next-sentence head) or the two are in order (sentence-order head).

    ``task`` picks the head where the bundle has both. Returns a ``SentencePairResult``. Raises ``ProbeError``
    for an empty text, a pair longer than the model's positions, a ``task`` that is not a pair task, or a
    bundle without the head asked for (train one with ``Trainer(bundle, "next-sentence", corpus)``).
    """
    first = check_text(first, "The first text")
    second = check_text(second, "The second text")
    name = _pick_head(bundle, task)
    tok = bundle.tokenizer
    parts = [
        tok(text, add_special_tokens=False, return_offsets_mapping=True, return_special_tokens_mask=True, verbose=False)
        for text in (first, second)
    ]
    try:
        ids, segments = pair_ids(tok, parts[0]["input_ids"], parts[1]["input_ids"])
    except DataError as error:
        raise ProbeError(str(error)) from None
    if len(ids) > bundle.max_positions:
        raise ProbeError(
            f"The pair is {len(ids)} tokens long but {bundle.name} takes at most {bundle.max_positions}; "
            "shorten the texts."
        )
    shown = [token_info(tok, enc, text) for enc, text in zip(parts, (first, second), strict=True)]
    cls, sep = tok.cls_token, tok.sep_token
    tokens = [cls, *shown[0].text, sep, *shown[1].text, sep]
    special = [True, *shown[0].special, True, *shown[1].special, True]

    model: Any = bundle.model
    device = bundle.device
    inputs = {"input_ids": torch.tensor([ids], device=device)}  # (1, tokens)
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if takes_segment_ids(model):
        inputs["token_type_ids"] = torch.tensor([segments], device=device)  # (1, tokens)
    head = bundle.heads[name]
    base = getattr(model, "base_model", model)
    with inference(model), inference(head):
        hidden = base(**inputs).last_hidden_state  # (1, tokens, hidden)
        logits = head(hidden.to(next(head.parameters()).dtype))  # (1, 2); a half-precision model, a float32 head
        probability = float(logits.float().softmax(-1)[0, 1])
    return SentencePairResult(name, bundle.name, first, second, probability, tokens, segments, special)


def _pick_head(bundle: ModelBundle, task: str | None) -> str:
    """The pair head the probe reads: ``task``'s, or the bundle's only one."""
    if task is not None and task not in PAIR_OBJECTIVES:
        raise ProbeError(f"task must be one of {', '.join(PAIR_OBJECTIVES)}, not {task!r}.")
    have = [name for name in PAIR_OBJECTIVES if name in bundle.heads]
    if task is not None and task not in have:
        found = f"only a {have[0]} head" if have else "no pair head"
        raise ProbeError(
            f"{bundle.name} has {found}; train a {task} head first with Trainer(bundle, {task!r}, corpus)."
        )
    if task is not None:
        return task
    if not have:
        raise ProbeError(
            f"{bundle.name} has no next-sentence or sentence-order head; train one first with "
            'Trainer(bundle, "next-sentence", corpus) (or "sentence-order").'
        )
    if len(have) > 1:
        raise ProbeError(f"{bundle.name} has both a next-sentence and a sentence-order head; pass task= to pick one.")
    return have[0]
