"""The whole numbers the data calls take, checked in one place: sizes, counts and token lengths."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.errors import DataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["check_token_length", "check_whole_number"]

# Tokenizers saved without a limit report a huge model_max_length (int(1e30)): no limit at all.
_NO_LIMIT = 1_000_000


def check_whole_number(name: str, value: object, smallest: int = 1) -> None:
    """Raise ``DataError`` unless ``value`` is an int (not a bool) of at least ``smallest``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
        wanted = "a positive whole number" if smallest == 1 else f"a whole number of at least {smallest}"
        raise DataError(f"{name} must be {wanted}, not {value!r}.")


def check_token_length(tokenizer: PreTrainedTokenizerBase, name: str, value: object, smallest: int) -> None:
    """Raise ``DataError`` unless ``value`` is a whole number from ``smallest`` to the tokenizer's ``model_max_length``.

    ``name`` is the argument's name as the caller wrote it (``max_length``, ``block_size``).
    """
    check_whole_number(name, value, smallest)
    limit = tokenizer.model_max_length
    if limit and limit < _NO_LIMIT and isinstance(value, int) and value > limit:
        raise DataError(
            f"{name} {value} is longer than the tokenizer's model_max_length {limit}; use {name} of at most {limit}."
        )
