"""Sentence pairs for next-sentence prediction (BERT) and sentence-order prediction (ALBERT).

A *segment* is a run of text from the corpus: each document (a paragraph, for files) is one segment, and a
document too long for half a pair is cut at sentence ends (``.``, ``!``, ``?``, ``…`` and any closing quote or
bracket), or inside a sentence only where one sentence alone is too long. Segments keep the corpus's order, so
segment ``i + 1`` is the text that follows segment ``i``.

Each pair of consecutive segments ``(i, i + 1)`` gives one example, written ``[CLS] first [SEP] second [SEP]``
with segment ids 0 for ``[CLS] first [SEP]`` and 1 for ``second [SEP]``. Half of them (to within one, chosen
by a seeded draw) keep the text as written, label 1; the other half, label 0, are changed:

- ``"next-sentence"``: the second segment is a random one from elsewhere in the corpus (never the true
  next segment, nor a segment with the same tokens, nor the first segment itself);
- ``"sentence-order"``: the two segments are swapped.

Example::

    pairs = sentence_pairs(tokenizer, corpus, block_size=128, objective="sentence-order", seed=0)
    pairs[0]  # {"input_ids": LongTensor(n), "token_type_ids": LongTensor(n), "pair_label": 1}
    loader = DataLoader(pairs, batch_size=32, collate_fn=sentence_pair_collator(tokenizer, token_type_ids=True))
"""

from __future__ import annotations

import bisect
import inspect
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

from workbench.data.checks import check_token_length
from workbench.data.corpus import Corpus, load_corpus
from workbench.errors import DataError

__all__ = [
    "PAIR_OBJECTIVES",
    "PairCollator",
    "PairObjective",
    "SentencePairs",
    "pair_ids",
    "segment_limit",
    "sentence_pair_collator",
    "sentence_pairs",
    "takes_segment_ids",
    "text_segments",
]

PairObjective = Literal["next-sentence", "sentence-order"]
PAIR_OBJECTIVES: tuple[PairObjective, ...] = get_args(PairObjective)

# The end of a sentence: its closing punctuation and any closing quotes or brackets after it.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*")
_TOKENIZE_BATCH = 1000  # documents per fast-tokenizer call
_DRAWS = 32  # random draws for a next-sentence negative before looking through every segment


def segment_limit(block_size: int) -> int:
    """The most tokens one segment may hold so that ``[CLS] a [SEP] b [SEP]`` fits ``block_size``."""
    return (block_size - 3) // 2


def pair_ids(
    tokenizer: PreTrainedTokenizerBase, first: Sequence[int], second: Sequence[int]
) -> tuple[list[int], list[int]]:
    """``[CLS] first [SEP] second [SEP]`` as token ids, and each token's segment (0 up to the first [SEP], then 1).

    ``first`` and ``second`` are ids without special tokens. Raises ``DataError`` when the tokenizer has no
    [CLS] or no [SEP] token."""
    cls, sep = _pair_tokens(tokenizer)
    ids = [cls, *first, sep, *second, sep]
    segments = [0] * (len(first) + 2) + [1] * (len(second) + 1)
    return ids, segments


def takes_segment_ids(model: Any) -> bool:
    """Whether ``model`` takes segment ids (``token_type_ids``: BERT, MiniLM); ModernBERT takes none and tells
    the two segments apart by the [SEP] between them alone."""
    return "token_type_ids" in inspect.signature(model.forward).parameters


def _pair_tokens(tokenizer: PreTrainedTokenizerBase) -> tuple[int, int]:
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls is None or sep is None:
        raise DataError(
            "Sentence pairs are written [CLS] first [SEP] second [SEP], and this tokenizer lacks "
            f"{'[CLS]' if cls is None else '[SEP]'}; use an encoder's tokenizer (a BERT-style wordpiece one)."
        )
    return int(cls), int(sep)


def text_segments(
    tokenizer: PreTrainedTokenizerBase, corpus: Corpus | Sequence[str], max_tokens: int
) -> list[list[int]]:
    """The corpus's segments in order, as token ids without special tokens, each at most ``max_tokens`` long.

    Every document is one segment; a longer one is cut at the last sentence end that keeps a piece within
    ``max_tokens`` (inside a sentence only where no sentence end is near enough). Documents that give no
    tokens are skipped. Raises ``DataError`` for a ``max_tokens`` below 1."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise DataError(f"max_tokens must be a positive whole number, not {max_tokens!r}.")
    texts = load_corpus(corpus).texts
    segments: list[list[int]] = []
    for start in range(0, len(texts), _TOKENIZE_BATCH):
        batch = texts[start : start + _TOKENIZE_BATCH]
        encoded = _tokenize(tokenizer, batch)
        for i, text in enumerate(batch):
            ids = list(encoded["input_ids"][i])
            offsets = encoded["offset_mapping"][i] if "offset_mapping" in encoded else None
            ends = _sentence_ends(text, offsets) if offsets is not None else []
            segments += [piece for piece in _cut(ids, ends, max_tokens) if piece]
    return segments


def _tokenize(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> Any:
    common: dict[str, Any] = {"add_special_tokens": False, "truncation": False, "padding": False, "verbose": False}
    try:
        return tokenizer(texts, return_offsets_mapping=True, **common)
    except NotImplementedError:  # a slow tokenizer keeps no offsets: long documents are cut at the limit
        return tokenizer(texts, **common)


def _sentence_ends(text: str, offsets: Sequence[tuple[int, int]]) -> list[int]:
    """Token counts after which a sentence of ``text`` ends (sorted): where a token ends a sentence's punctuation."""
    ends = {m.end() for m in _SENTENCE_END.finditer(text) if m.end() == len(text) or text[m.end()].isspace()}
    return [i + 1 for i, (_, end) in enumerate(offsets) if end in ends]


def _cut(ids: list[int], ends: list[int], max_tokens: int) -> list[list[int]]:
    """``ids`` in pieces of at most ``max_tokens``, each cut at the last sentence end that fits, if any.

    A sentence too long for one piece is cut into pieces of equal length (to within one token), so no
    piece is a stray word or a lone full stop."""
    pieces, start = [], 0
    while len(ids) - start > max_tokens:
        last = bisect.bisect_right(ends, start + max_tokens) - 1  # the last sentence end within reach
        if last >= 0 and ends[last] > start:
            cut = ends[last]
        else:
            after = bisect.bisect_right(ends, start)
            sentence = (ends[after] if after < len(ends) else len(ids)) - start  # tokens to the sentence's end
            cut = start + math.ceil(sentence / math.ceil(sentence / max_tokens))
        pieces.append(ids[start:cut])
        start = cut
    pieces.append(ids[start:])
    return pieces


class SentencePairs(Dataset[dict[str, Any]]):
    """Pairs of segments with their labels; item ``i`` is ``{"input_ids", "token_type_ids", "pair_label"}``.

    ``firsts[i]`` and ``seconds[i]`` are the indices into ``segments`` of pair ``i``'s two parts; ``labels[i]``
    is 1 where the pair is as written (the second is the next segment, in order) and 0 where it was changed.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        segments: list[list[int]],
        firsts: np.ndarray,
        seconds: np.ndarray,
        labels: np.ndarray,
        *,
        objective: PairObjective,
        name: str = "",
    ) -> None:
        if not len(firsts) == len(seconds) == len(labels):
            raise DataError("SentencePairs needs as many first and second segments as labels.")
        self.tokenizer = tokenizer
        self.segments = segments
        self.firsts, self.seconds, self.labels = firsts, seconds, labels  # (pairs,) each
        self.objective: PairObjective = objective
        self.name = name

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ids, segments = pair_ids(
            self.tokenizer, self.segments[int(self.firsts[index])], self.segments[int(self.seconds[index])]
        )
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),  # (tokens,)
            "token_type_ids": torch.tensor(segments, dtype=torch.long),  # (tokens,)
            "pair_label": int(self.labels[index]),
        }

    def __repr__(self) -> str:
        return f"SentencePairs(name={self.name!r}, objective={self.objective!r}, pairs={len(self)})"

    def to_dict(self) -> dict[str, Any]:
        """A summary: name, objective, segments, pairs, and how many are as written (label 1)."""
        return {
            "name": self.name,
            "objective": self.objective,
            "segments": len(self.segments),
            "pairs": len(self),
            "as_written": int(self.labels.sum()),
        }


def sentence_pairs(
    tokenizer: PreTrainedTokenizerBase,
    corpus: Corpus | Sequence[str],
    block_size: int = 128,
    *,
    objective: PairObjective = "next-sentence",
    seed: int = 0,
) -> SentencePairs:
    """One pair per two consecutive segments of ``corpus``, half of them changed as ``objective`` says.

    Segments hold at most ``(block_size - 3) // 2`` tokens, so every pair fits ``block_size``. The same
    ``seed`` gives the same pairs and labels; ``ceil(pairs / 2)`` are as written. Returns ``SentencePairs``.
    Raises ``DataError`` for an unknown objective, a ``block_size`` below 5, a tokenizer without [CLS] and
    [SEP], a corpus that gives fewer than two segments, or (next-sentence) one whose segments all repeat.
    """
    if objective not in PAIR_OBJECTIVES:
        raise DataError(f"objective must be one of {', '.join(PAIR_OBJECTIVES)}, not {objective!r}.")
    check_token_length(tokenizer, "block_size", block_size, smallest=5)
    _pair_tokens(tokenizer)
    corpus = load_corpus(corpus)
    segments = text_segments(tokenizer, corpus, segment_limit(block_size))
    if len(segments) < 2:
        raise DataError(
            f"The corpus {corpus.name!r} gives {len(segments)} segment, and a {objective} pair needs two "
            "consecutive ones; give it at least two texts (or paragraphs separated by a blank line)."
        )
    pairs = len(segments) - 1
    rng = np.random.default_rng(seed)
    labels = np.ones(pairs, dtype=np.int64)
    labels[rng.permutation(pairs)[: pairs // 2]] = 0
    firsts = np.arange(pairs)  # (pairs,)
    seconds = firsts + 1
    changed = np.flatnonzero(labels == 0)
    if objective == "sentence-order":
        firsts[changed], seconds[changed] = seconds[changed], firsts[changed].copy()
    else:
        for i in changed:
            seconds[i] = _other_segment(segments, int(i), rng)
    return SentencePairs(tokenizer, segments, firsts, seconds, labels, objective=objective, name=corpus.name)


def _other_segment(segments: list[list[int]], first: int, rng: np.random.Generator) -> int:
    """A random segment to follow ``first`` that is not its true next one (nor has the same tokens) nor itself."""
    true_next = segments[first + 1]

    def fits(j: int) -> bool:
        return j not in (first, first + 1) and segments[j] != true_next

    for _ in range(_DRAWS):
        j = int(rng.integers(len(segments)))
        if fits(j):
            return j
    others = [j for j in range(len(segments)) if fits(j)]
    if not others:
        raise DataError(
            "Every segment of the corpus repeats the one that follows it, so no pair can be 'not next'; "
            "give next-sentence a corpus of texts that differ."
        )
    return int(others[int(rng.integers(len(others)))])


@dataclass
class PairCollator:
    """Pads pairs on the right into ``input_ids``, ``attention_mask``, ``pair_labels`` and, where the model
    takes them, ``token_type_ids`` (padding: ``pad_token_id``, mask 0, segment 0)."""

    pad_token_id: int
    token_type_ids: bool

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not examples:
            raise DataError("The sentence-pair collator got an empty batch; give it at least one pair.")
        rows = [torch.as_tensor(e["input_ids"], dtype=torch.long) for e in examples]
        longest = max(row.numel() for row in rows)
        input_ids = torch.full((len(rows), longest), self.pad_token_id, dtype=torch.long)  # (batch, longest)
        attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)  # (batch, longest)
        segments = torch.zeros((len(rows), longest), dtype=torch.long)  # (batch, longest)
        for i, (row, example) in enumerate(zip(rows, examples, strict=True)):
            input_ids[i, : row.numel()] = row
            attention_mask[i, : row.numel()] = 1
            segments[i, : row.numel()] = torch.as_tensor(example["token_type_ids"], dtype=torch.long)
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "pair_labels": torch.tensor([int(e["pair_label"]) for e in examples], dtype=torch.long),  # (batch,)
        }
        if self.token_type_ids:
            batch["token_type_ids"] = segments
        return batch


def sentence_pair_collator(tokenizer: PreTrainedTokenizerBase, *, token_type_ids: bool) -> PairCollator:
    """A collator for ``SentencePairs``; ``token_type_ids`` for models that take segment ids (BERT, MiniLM;
    ModernBERT takes none and tells the segments apart by the [SEP] between them)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.sep_token_id
    if pad is None:
        raise DataError("The tokenizer has neither a pad nor a [SEP] token to pad sentence pairs with.")
    return PairCollator(pad_token_id=int(pad), token_type_ids=token_type_ids)
