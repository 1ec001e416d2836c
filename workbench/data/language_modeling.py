"""Language-model data: a corpus packed into fixed-length token blocks, and the collators.

Every document is tokenized, the documents are joined with the tokenizer's end-of-text
(or separator) token, and the stream is cut into blocks of ``block_size``; the last,
partial block is dropped, so batches never need padding.

Example::

    blocks = token_blocks(tokenizer, corpus, block_size=128, add_special_tokens=True)
    loader = DataLoader(blocks, batch_size=32, shuffle=True, collate_fn=masked_lm_collator(tokenizer))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerBase

from workbench.data.checks import check_token_length
from workbench.data.corpus import Corpus, load_corpus
from workbench.errors import DataError

__all__ = ["CausalLMCollator", "TokenBlocks", "causal_lm_collator", "masked_lm_collator", "token_blocks"]

_TOKENIZE_BATCH = 1000  # documents per fast-tokenizer call


class TokenBlocks(Dataset[dict[str, torch.Tensor]]):
    """Fixed-length blocks of token ids; item ``i`` is ``{"input_ids": LongTensor(block_size)}``."""

    def __init__(self, blocks: torch.Tensor, *, corpus_tokens: int, name: str = "") -> None:
        if blocks.dim() != 2 or blocks.dtype != torch.long:
            raise DataError(f"TokenBlocks needs a 2-D int64 tensor (blocks, block_size), got {tuple(blocks.shape)}.")
        self.blocks = blocks  # (n_blocks, block_size)
        self.corpus_tokens = corpus_tokens
        self.name = name

    @property
    def block_size(self) -> int:
        """Tokens per block, special tokens included."""
        return self.blocks.shape[1]

    @property
    def num_tokens(self) -> int:
        """Tokens held in all blocks together (the dropped partial block not counted)."""
        return self.blocks.numel()

    def __len__(self) -> int:
        return self.blocks.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        # A copy, so a collator that masks in place can never change the stored blocks.
        return {"input_ids": self.blocks[index].clone()}

    def __repr__(self) -> str:
        return f"TokenBlocks(name={self.name!r}, blocks={len(self)}, block_size={self.block_size})"

    def to_dict(self) -> dict[str, Any]:
        """A summary: name, blocks, block_size, tokens held, tokens the corpus gave."""
        return {
            "name": self.name,
            "blocks": len(self),
            "block_size": self.block_size,
            "tokens": self.num_tokens,
            "corpus_tokens": self.corpus_tokens,
        }


def token_blocks(
    tokenizer: PreTrainedTokenizerBase,
    corpus: Corpus | Sequence[str],
    block_size: int = 128,
    *,
    add_special_tokens: bool,
) -> TokenBlocks:
    """Tokenize ``corpus``, join its documents and cut the stream into blocks of ``block_size``.

    With ``add_special_tokens=True`` (masked LM) each block is ``[CLS] ... [SEP]`` around
    ``block_size - 2`` content tokens; with ``False`` (causal LM) all ``block_size`` are content.
    Returns ``TokenBlocks``. Raises ``DataError`` when the corpus gives fewer tokens than one
    block, ``block_size`` is out of range, or the tokenizer lacks the [CLS]/[SEP] tokens asked for.
    """
    if not isinstance(add_special_tokens, bool):
        raise DataError("add_special_tokens must be True (masked LM) or False (causal LM).")
    check_token_length(tokenizer, "block_size", block_size, smallest=3 if add_special_tokens else 2)
    corpus = load_corpus(corpus)
    special = _block_ends(tokenizer) if add_special_tokens else None  # checked before the long tokenizing
    content = block_size - 2 if add_special_tokens else block_size

    stream = _token_stream(tokenizer, corpus.texts)  # (corpus_tokens,)
    n_blocks = stream.numel() // content
    if n_blocks == 0:
        raise DataError(
            f"The corpus gives {stream.numel()} tokens, fewer than one block of {block_size}; "
            "use a smaller block_size or more text."
        )
    blocks = stream[: n_blocks * content].view(n_blocks, content)  # (n_blocks, content)
    if special is not None:
        starts = torch.full((n_blocks, 1), special[0], dtype=torch.long)
        ends = torch.full((n_blocks, 1), special[1], dtype=torch.long)
        blocks = torch.cat([starts, blocks, ends], dim=1)  # (n_blocks, block_size)
    return TokenBlocks(blocks.contiguous(), corpus_tokens=stream.numel(), name=corpus.name)


def _block_ends(tokenizer: PreTrainedTokenizerBase) -> tuple[int, int]:
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if start is None or end is None:
        raise DataError(
            "add_special_tokens=True needs a tokenizer with [CLS] and [SEP] (or bos and eos) tokens, and this one "
            "lacks them; use add_special_tokens=False for causal LM, or a BERT-style tokenizer."
        )
    return start, end


def _token_stream(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> torch.Tensor:
    """All documents' ids joined by the end-of-text (or separator) token: (tokens,)."""
    between = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    flat: list[int] = []
    for first in range(0, len(texts), _TOKENIZE_BATCH):
        batch = texts[first : first + _TOKENIZE_BATCH]
        # verbose=False: documents longer than model_max_length are expected here, they get cut into blocks.
        encoded = tokenizer(
            batch,
            add_special_tokens=False,
            truncation=False,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )
        for ids in encoded["input_ids"]:
            if flat and between is not None:
                flat.append(between)
            flat.extend(ids)
    return torch.tensor(flat, dtype=torch.long)


def masked_lm_collator(
    tokenizer: PreTrainedTokenizerBase, mlm_probability: float = 0.15, seed: int | None = None
) -> DataCollatorForLanguageModeling:
    """A collator that masks ``mlm_probability`` of the non-special tokens (80% [MASK], 10% random, 10% kept).

    Labels are the original ids at the chosen positions and -100 elsewhere. With ``seed`` the
    masks repeat from run to run. Returns transformers' ``DataCollatorForLanguageModeling``.
    Raises ``DataError`` when the tokenizer has no mask token or the probability is not in (0, 1).
    """
    if tokenizer.mask_token is None:
        raise DataError(
            "This tokenizer has no mask token, so it cannot be used for masked-LM; train a wordpiece "
            "tokenizer (it has [MASK]) or use causal_lm_collator instead."
        )
    if not isinstance(mlm_probability, (int, float)) or not 0 < mlm_probability < 1:
        raise DataError(f"mlm_probability must be between 0 and 1 (e.g. 0.15), not {mlm_probability!r}.")
    return DataCollatorForLanguageModeling(
        tokenizer=tokenizer,
        mlm=True,
        mlm_probability=float(mlm_probability),
        mask_replace_prob=0.8,
        random_replace_prob=0.1,
        seed=seed,
    )


@dataclass
class CausalLMCollator:
    """Stacks blocks into ``input_ids`` and copies them to ``labels``; the model shifts them itself.

    Packed blocks all have the same length; rows of different lengths are padded on the right,
    with ``attention_mask`` 0 and label -100 on the padding.
    """

    pad_token_id: int | None

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not examples:
            raise DataError("The causal-LM collator got an empty batch; give it at least one example.")
        rows = [torch.as_tensor(example["input_ids"], dtype=torch.long) for example in examples]
        longest = max(row.numel() for row in rows)
        if all(row.numel() == longest for row in rows):
            input_ids = torch.stack(rows)  # (batch, block_size)
            return {"input_ids": input_ids, "labels": input_ids.clone()}
        if self.pad_token_id is None:
            raise DataError(
                "These examples differ in length and the tokenizer has no pad (or eos) token to pad them with; "
                "use token_blocks, whose blocks all have the same length."
            )
        input_ids = torch.full((len(rows), longest), self.pad_token_id, dtype=torch.long)  # (batch, longest)
        attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, : row.numel()] = row
            attention_mask[i, : row.numel()] = 1
        labels = input_ids.masked_fill(attention_mask == 0, -100)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def causal_lm_collator(tokenizer: PreTrainedTokenizerBase) -> CausalLMCollator:
    """A collator for causal LM: ``labels`` equal ``input_ids`` (no padding for packed blocks).

    Returns a picklable ``CausalLMCollator`` (safe for DataLoader worker processes).
    """
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return CausalLMCollator(pad_token_id=pad)
