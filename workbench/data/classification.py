"""Sequence-classification data: tokenized examples, dynamic padding, and length-grouped batches.

Example::

    train_set = classification_dataset(tokenizer, train, max_length=128)
    order = length_grouped_order(train_set.lengths, batch_size=32, seed=epoch)
    loader = DataLoader(Subset(train_set, order), batch_size=32, collate_fn=classification_collator(tokenizer))
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from torch.utils.data import Dataset
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from workbench.data.checks import check_token_length, check_whole_number
from workbench.data.labelled import LabelledData
from workbench.errors import DataError

__all__ = ["ClassificationDataset", "classification_collator", "classification_dataset", "length_grouped_order"]

_CHUNK_BATCHES = 50  # batches sorted together: long enough to group lengths, short enough to stay random


class ClassificationDataset(Dataset[dict[str, Any]]):
    """Tokenized examples; item ``i`` is ``{"input_ids": [...], "attention_mask": [...], "labels": int}``."""

    def __init__(self, input_ids: list[list[int]], labels: list[int], label_names: list[str], name: str = "") -> None:
        self.input_ids = input_ids
        self.labels = labels
        self.label_names = label_names
        self.name = name

    @property
    def lengths(self) -> list[int]:
        """Tokens in each example (after truncation), for ``length_grouped_order``."""
        return [len(ids) for ids in self.input_ids]

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ids = self.input_ids[index]
        return {"input_ids": list(ids), "attention_mask": [1] * len(ids), "labels": self.labels[index]}

    def __repr__(self) -> str:
        return f"ClassificationDataset(name={self.name!r}, examples={len(self)}, label_names={self.label_names})"

    def to_dict(self) -> dict[str, Any]:
        """A summary: name, examples, label names, longest and mean length in tokens."""
        lengths = self.lengths
        return {
            "name": self.name,
            "examples": len(self),
            "label_names": list(self.label_names),
            "longest": max(lengths, default=0),
            "mean_length": sum(lengths) / max(len(lengths), 1),
        }


def classification_dataset(
    tokenizer: PreTrainedTokenizerBase, data: LabelledData, max_length: int = 128
) -> ClassificationDataset:
    """Tokenize every text of ``data`` (with the tokenizer's special tokens), cut to ``max_length``.

    Examples are not padded; ``classification_collator`` pads each batch to its longest.
    Returns a ``ClassificationDataset``. Raises ``DataError`` when ``data`` is not
    ``LabelledData`` or ``max_length`` is below 2 or above the tokenizer's ``model_max_length``.
    """
    if not isinstance(data, LabelledData):
        raise DataError(f"data must be LabelledData (from load_labelled), not a {type(data).__name__}.")
    check_token_length(tokenizer, "max_length", max_length, smallest=2)
    encoded = tokenizer(
        list(data.texts),
        truncation=True,
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    return ClassificationDataset(encoded["input_ids"], list(data.labels), list(data.label_names), name=data.name)


def classification_collator(tokenizer: PreTrainedTokenizerBase) -> DataCollatorWithPadding:
    """A collator that pads each batch to its longest example and stacks ``labels``.

    Returns transformers' ``DataCollatorWithPadding``. Raises ``DataError`` when the tokenizer
    has no pad token.
    """
    if tokenizer.pad_token is None:
        raise DataError(
            "This tokenizer has no pad token, so batches cannot be padded; set one first, e.g. "
            "tokenizer.pad_token = tokenizer.eos_token."
        )
    return DataCollatorWithPadding(tokenizer=tokenizer, padding="longest", return_tensors="pt")


def length_grouped_order(lengths: Sequence[int], batch_size: int, seed: int = 0) -> list[int]:
    """An order of all indices in which each run of ``batch_size`` holds examples of similar length.

    Shuffles, sorts within chunks of 50 batches by length, then shuffles the batches; the one
    short batch, if any, comes last so every batch the DataLoader cuts stays grouped.
    Returns a permutation of ``range(len(lengths))``. Raises ``DataError`` for a batch_size below 1.
    """
    check_whole_number("batch_size", batch_size)
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = _CHUNK_BATCHES * batch_size
    for start in range(0, len(order), chunk):
        order[start : start + chunk] = sorted(order[start : start + chunk], key=lambda i: lengths[i], reverse=True)
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    short = batches.pop() if batches and len(batches[-1]) < batch_size else None
    rng.shuffle(batches)
    if short is not None:
        batches.append(short)
    return [i for batch in batches for i in batch]
