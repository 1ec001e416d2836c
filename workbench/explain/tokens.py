"""Tokens as a reader writes them: decoded byte-level pieces, marked continuations and special tokens."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["TokenInfo", "text_tokens", "token_info"]


@dataclass
class TokenInfo:
    """Per token: its display text, whether it is special, continues a word, is punctuation; word and segment ids."""

    text: list[str]
    special: list[bool]
    continuation: list[bool]
    punctuation: list[bool]
    word_ids: list[int | None]
    segment_ids: list[int]
    ids: list[int] = field(default_factory=list)  # the token ids themselves

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _is_punctuation(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and all(unicodedata.category(c).startswith("P") for c in stripped)


def token_info(tokenizer: Any, encoding: Any, source: str, pair: str | None = None) -> TokenInfo:
    """Display text and flags for each token of ``encoding`` (a fast tokenizer's output for ``source``/``pair``).

    Text comes from the character offsets into the input, so byte-level pieces show as the
    characters they stand for (no ``Ġ``, ``Ċ`` or mojibake) and word pieces lose their ``##``;
    special tokens show as their own name.
    """
    ids = encoding["input_ids"]
    offsets = encoding["offset_mapping"]
    special_mask = encoding.get("special_tokens_mask") or [0] * len(ids)
    sequence_ids = encoding.sequence_ids() if hasattr(encoding, "sequence_ids") else [0] * len(ids)
    words = encoding.word_ids() if hasattr(encoding, "word_ids") else [None] * len(ids)
    texts, special, continuation, punctuation, segments = [], [], [], [], []
    previous_word, previous_seq = None, None
    shown_until: dict[int | None, int] = {}  # per sequence: characters already shown
    for i, token_id in enumerate(ids):
        seq = sequence_ids[i]
        is_special = bool(special_mask[i]) or seq is None
        start, end = offsets[i]
        if is_special:
            text = tokenizer.convert_ids_to_tokens(int(token_id))
        elif end > start:
            # Byte-level pieces of one character (an emoji, a CJK sign) share its offsets: the
            # character shows once, on its first piece; the later pieces show as empty.
            original = source if seq in (0, None) else (pair or "")
            text = original[max(start, shown_until.get(seq, 0)) : end]
            shown_until[seq] = max(end, shown_until.get(seq, 0))
        else:
            text = tokenizer.decode([int(token_id)])
        texts.append(text)
        special.append(is_special)
        word = words[i]
        continuation.append(not is_special and word is not None and word == previous_word and seq == previous_seq)
        punctuation.append(not is_special and _is_punctuation(text))
        segments.append(1 if seq == 1 else 0)
        previous_word, previous_seq = word, seq
    return TokenInfo(texts, special, continuation, punctuation, list(words), segments, [int(i) for i in ids])


def text_tokens(bundle: ModelBundle, text: str) -> TokenInfo:
    """How each token of ``text`` shows to a reader, by ``bundle``'s tokenizer (results keep these)."""
    tok = bundle.tokenizer
    enc = tok(text, return_offsets_mapping=True, return_special_tokens_mask=True, verbose=False)
    return token_info(tok, enc, text)
