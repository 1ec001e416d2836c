"""What an intervention is given, checked once: the clean and corrupted texts (same length), where the
metric is read, the positions patched, the subject of causal tracing and the sites mapped.

Patching and attribution patching share these checks, so both answer bad input with the same sentence.

Example::

    pair = patch_inputs(bundle, "The Eiffel Tower is in", "The Colosseum is in")   # ProbeError if lengths differ
    pair.differing        # [1, 2, 3]: the positions whose tokens differ
    grid = site_grid(bundle.model, "resid_post", pair.length, None)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

from workbench.errors import ProbeError
from workbench.explain.inputs import MASK_PLACEHOLDER, check_text, encode, with_model_mask
from workbench.explain.patching_result import Direction, PatchingMethod, PatchingResult
from workbench.explain.sites import Site, parse_sites
from workbench.explain.tokens import TokenInfo, text_tokens

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = [
    "PatchInputs",
    "SiteGrid",
    "check_choice",
    "check_positions",
    "patch_inputs",
    "site_grid",
    "subject_positions",
]


Choice = TypeVar("Choice", bound=str)
SHOWN_TOKENS = 8  # of each text's differing tokens, at most, in the sentence on different lengths


@dataclass(frozen=True)
class PatchInputs:
    """The clean text and its counterpart, encoded to the same length ``n``, and where the metric reads."""

    clean: str
    corrupted: str | None  # None for causal tracing
    clean_ids: dict[str, torch.Tensor]  # the tokenizer's tensors, (1, n)
    corrupted_ids: dict[str, torch.Tensor] | None
    clean_tokens: TokenInfo
    corrupted_tokens: TokenInfo | None
    model_text: str  # the clean text as the model reads it (a masked LM's own mask token)
    differing: list[int]
    read: int

    @property
    def length(self) -> int:
        return int(self.clean_ids["input_ids"].shape[1])


@dataclass(frozen=True)
class SiteGrid:
    """The sites of one kind laid out as a map: rows are layers, columns positions (or heads)."""

    kind: str
    sites: list[Site]
    layers: list[int]
    columns: list[int]
    positions: list[int]  # the positions patched (every column for position maps; all of them per head)


def check_choice(value: object, name: str, choices: Sequence[Choice]) -> Choice:
    """``value`` when it is one of ``choices`` (typed as they are, e.g. a ``Literal``); a sentence naming them
    otherwise."""
    for choice in choices:
        if isinstance(value, str) and value == choice:
            return choice
    raise ProbeError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}.")


def patch_inputs(bundle: ModelBundle, clean: object, corrupted: object, read_position: object = None) -> PatchInputs:
    """Check and encode the texts of an intervention (``corrupted=None``: causal tracing, nothing to compare).

    Raises ``ProbeError`` for a model that is not a language model, an empty text, a masked LM's clean text
    without a mask, texts that tokenise to different lengths (naming the tokens that differ), or a read
    position out of range.
    """
    if bundle.kind not in ("causal-lm", "masked-lm"):
        raise ProbeError(
            f"Patching reads a language model's logits; {bundle.name} is a {bundle.kind} model: "
            "load a causal or masked language model."
        )
    tok = bundle.tokenizer
    clean = check_text(clean, "The clean text")
    model_text = with_model_mask(tok, clean) if bundle.kind == "masked-lm" else clean
    clean_ids = encode(bundle, model_text)
    clean_tokens = text_tokens(bundle, model_text)
    corrupted_ids, corrupted_tokens, differing = None, None, []
    if corrupted is not None:
        corrupted = check_text(corrupted, "The corrupted text")
        corrupted_text = with_model_mask(tok, corrupted) if bundle.kind == "masked-lm" else corrupted
        corrupted_ids = encode(bundle, corrupted_text)
        corrupted_tokens = text_tokens(bundle, corrupted_text)
        a, b = clean_ids["input_ids"][0].tolist(), corrupted_ids["input_ids"][0].tolist()
        if len(a) != len(b):
            raise ProbeError(_length_sentence(a, b, clean_tokens, corrupted_tokens))
        differing = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    ids = clean_ids["input_ids"][0].tolist()
    n = len(ids)
    if read_position is None:
        if bundle.kind == "masked-lm":
            if tok.mask_token_id not in ids:
                raise ProbeError(
                    f"The clean text has no mask; put {MASK_PLACEHOLDER} where the model should guess the answer."
                )
            read = ids.index(tok.mask_token_id)
        else:
            read = n - 1
    else:
        read = _one_position(read_position, n, "read_position")
    return PatchInputs(
        clean, corrupted, clean_ids, corrupted_ids, clean_tokens, corrupted_tokens, model_text, differing, read
    )


def _length_sentence(a: list[int], b: list[int], clean: TokenInfo, corrupted: TokenInfo) -> str:
    """One sentence naming the tokens where two id lists of different lengths part ways."""
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[len(a) - 1 - end] == b[len(b) - 1 - end]:
        end += 1

    def shown(tokens: TokenInfo, stop: int) -> str:
        pieces = tokens.text[start:stop]
        if not pieces:
            return "nothing"
        words = " ".join(repr(p) for p in pieces[:SHOWN_TOKENS])
        return words if len(pieces) <= SHOWN_TOKENS else f"{words} ... ({len(pieces)} tokens)"

    return (
        f"The clean and corrupted texts must have the same number of tokens, but the clean text has {len(a)} and "
        f"the corrupted text {len(b)}: {shown(clean, len(a) - end)} against {shown(corrupted, len(b) - end)}; "
        "replace words with words of as many tokens."
    )


def _one_position(value: object, n: int, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not -n <= value < n:
        raise ProbeError(f"{name} must be a token position in 0..{n - 1} (or -1 for the last), got {value!r}.")
    return value % n


def check_positions(positions: object, n: int) -> list[int]:
    """The positions patched, each once, in order; every position by default."""
    if positions is None:
        return list(range(n))
    if isinstance(positions, int) and not isinstance(positions, bool):
        positions = [positions]
    if isinstance(positions, (str, bytes)) or not isinstance(positions, (Sequence, range)) or not positions:
        raise ProbeError(f"positions must be a non-empty list of token positions in 0..{n - 1}, got {positions!r}.")
    return list(dict.fromkeys(_one_position(p, n, "Each position") for p in positions))


def site_grid(model: torch.nn.Module, spec: object, n: int, positions: object) -> SiteGrid:
    """The sites of ``spec`` (one kind; see :func:`workbench.explain.sites.parse_sites`) as rows and columns.

    Raises ``ProbeError`` for an unknown site, a layer or head out of range, sites of several kinds, or a
    position out of range.
    """
    chosen = parse_sites(model, spec)
    kinds = list(dict.fromkeys(s.kind for s in chosen))
    if len(kinds) > 1:
        raise ProbeError(f"A patching map holds sites of one kind, got {', '.join(kinds)}; call it once per kind.")
    kind = kinds[0]
    patched = check_positions(positions, n)
    layers = list(dict.fromkeys(s.layer for s in chosen))
    columns = sorted({s.head or 0 for s in chosen}) if kind == "head" else patched
    return SiteGrid(kind, chosen, layers, columns, patched)


def subject_positions(bundle: ModelBundle, pair: PatchInputs, subject: object) -> list[int]:
    """The token positions of ``subject``: a substring of the clean text (its first occurrence) or positions."""
    n = pair.length
    if isinstance(subject, str):
        if not subject.strip():
            raise ProbeError("The subject is empty; name the words of the clean text to corrupt, or their positions.")
        start = pair.model_text.find(subject)
        if start < 0:
            raise ProbeError(
                f"The subject {subject!r} is not in the clean text {pair.clean!r}; give words as they appear there."
            )
        end = start + len(subject)
        enc = bundle.tokenizer(pair.model_text, return_offsets_mapping=True)
        found = [i for i, (a, b) in enumerate(enc["offset_mapping"]) if b > a and a < end and b > start]
        if not found:
            raise ProbeError(f"The subject {subject!r} covers no token of the clean text; name whole words.")
        return found
    if subject is None:
        raise ProbeError(
            "Causal tracing (corrupted=None) needs subject=: the words of the clean text to corrupt with noise "
            "(e.g. subject='Eiffel Tower'), or their token positions."
        )
    return check_positions(subject, n)


def pair_result(
    bundle: ModelBundle,
    pair: PatchInputs,
    grid: SiteGrid,
    values: np.ndarray,
    *,
    method: PatchingMethod,
    metric: str,
    clean_metric: float,
    corrupted_metric: float,
    direction: Direction,
    note: str,
    **extra: Any,
) -> PatchingResult:
    """The map of ``values`` ``(layers, columns)`` over ``grid`` for the texts of ``pair``: the fields every way of
    patching fills alike, with ``extra`` (``differing``, ``subject``, ``samples``) where one fills them its own way."""
    fields: dict[str, Any] = {
        "model": bundle.name,
        "method": method,
        "kind": grid.kind,
        "metric": metric,
        "clean": pair.clean,
        "clean_tokens": pair.clean_tokens,
        "values": values,
        "layers": grid.layers,
        "columns": grid.columns,
        "clean_metric": clean_metric,
        "corrupted_metric": corrupted_metric,
        "corrupted": pair.corrupted,
        "corrupted_tokens": pair.corrupted_tokens,
        "differing": pair.differing,
        "patched_positions": list(grid.positions),
        "direction": direction,
        "read_position": pair.read,
        "note": note,
    }
    return PatchingResult(**{**fields, **extra})
