"""What every explain call does with its input before the model sees it, and with token ids after.

Checks a text (one sentence on what is wrong), writes ``[MASK]`` as the model's own mask token,
encodes within the model's positions, names a target token by string or id, shows a token as a
reader writes it, and runs the model in eval mode without gradients.

Example::

    text = check_text(text)                       # ProbeError("The probe text is empty; ...") on ""
    enc = encode(bundle, with_model_mask(bundle.tokenizer, text))
    with inference(bundle.model):
        logits = bundle.model(**enc).logits       # (1, n, vocab)
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from workbench.errors import ProbeError

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = [
    "MASK_PLACEHOLDER",
    "accepts_argument",
    "check_text",
    "check_top_k",
    "display_token",
    "encode",
    "inference",
    "token_id",
    "with_model_mask",
]

MASK_PLACEHOLDER = "[MASK]"  # accepted for any masked LM, whatever its own mask token is


def check_text(text: object, what: str = "The probe text", error: type[Exception] = ProbeError) -> str:
    """``text`` if it is a non-empty string of valid Unicode; otherwise raises ``error`` with a sentence."""
    if not isinstance(text, str):
        raise error(f"{what} must be a string, got {type(text).__name__}.")
    if not text.strip():
        raise error(f"{what} is empty; write a sentence.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise error(
            f"{what} holds a character that is not valid Unicode (an unpaired surrogate at position "
            f"{e.start}); remove it, or decode the source with errors='replace'."
        ) from None
    return text


def check_top_k(top_k: object) -> int:
    """``top_k`` if it is a positive integer; ``ProbeError`` otherwise."""
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ProbeError(f"top_k must be a positive integer, got {top_k!r}.")
    return top_k


def with_model_mask(tokenizer: Any, text: str) -> str:
    """``text`` with ``[MASK]`` written as the model's own mask token (ModernBERT, RoBERTa: ``<mask>``...)."""
    mask = tokenizer.mask_token
    return text.replace(MASK_PLACEHOLDER, mask) if mask and mask != MASK_PLACEHOLDER else text


def display_token(tokenizer: Any, token: int) -> str:
    """A token as a reader writes it: byte-level pieces decoded, word-piece '##' kept as a continuation mark."""
    piece = tokenizer.convert_ids_to_tokens(int(token))
    if piece is not None and piece.startswith("##"):
        return str(piece)
    return str(tokenizer.decode([int(token)]))


def encode(bundle: ModelBundle, text: str) -> dict[str, torch.Tensor]:
    """The tokenizer's tensors for ``text`` on the model's device; ``ProbeError`` when it is too long."""
    enc = bundle.tokenizer(text, return_tensors="pt")
    n = enc["input_ids"].shape[1]
    if n > bundle.max_positions:
        raise ProbeError(
            f"The text is {n} tokens long but {bundle.name} takes at most {bundle.max_positions}; shorten it."
        )
    return {k: v.to(bundle.device) for k, v in enc.items()}


@contextlib.contextmanager
def inference(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode (no dropout), no gradients and no key/value cache for the call; all restored after.

    A causal LM keeps every layer's keys and values by default (``config.use_cache``), for a
    generation that an explain call does not do: SmolLM2 at 4,096 tokens holds 189 MB of them, 40%
    of its forward's peak memory. A call that wants the cache (``generate``) asks for it explicitly.
    """
    was_training = model.training
    if was_training:  # switching walks every module: about 1 ms on a small model, so only when needed
        model.eval()
    config = getattr(model, "config", None)
    with _cache_lock:  # the first call on a model turns its cache off, the last one out turns it back on
        calls = _cache_off.get(id(config))
        if calls is not None:
            _cache_off[id(config)] = calls + 1
        elif getattr(config, "use_cache", False) is True:
            _cache_off[id(config)] = 1
            config.use_cache = False  # type: ignore[union-attr]
    try:
        with torch.inference_mode():
            yield
    finally:
        with _cache_lock:
            calls = _cache_off.get(id(config))
            if calls == 1:
                del _cache_off[id(config)]
                config.use_cache = True  # type: ignore[union-attr]
            elif calls is not None:
                _cache_off[id(config)] = calls - 1
        if was_training:
            model.train()


_cache_lock = threading.Lock()
_cache_off: dict[int, int] = {}  # id of a config whose cache inference() turned off -> calls inside


def token_id(tokenizer: Any, target: object, vocab_size: int) -> int:
    """One token's id, from a token string (with or without its leading space) or an id; ProbeError otherwise."""
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        if not 0 <= int(target) < vocab_size:
            raise ProbeError(f"Token id {int(target)} is out of range: the vocabulary has {vocab_size} ids.")
        return int(target)
    if isinstance(target, str) and target:
        for candidate in (target, " " + target.lstrip()) if not target.startswith(" ") else (target,):
            pieces = tokenizer(candidate, add_special_tokens=False)["input_ids"]
            if len(pieces) == 1:
                return int(pieces[0])
        pieces = tokenizer(target, add_special_tokens=False)["input_ids"]
        shown = " ".join(repr(display_token(tokenizer, p)) for p in pieces)
        raise ProbeError(
            f"The target {target!r} is {len(pieces)} tokens ({shown}); pass one of them (a string or its id)."
        )
    raise ProbeError(f"A target token is a non-empty string or an id, got {type(target).__name__}.")


def accepts_argument(model: torch.nn.Module, name: str) -> bool:
    """Whether the model's ``forward`` takes an argument called ``name`` (``token_type_ids``, ``logits_to_keep``)."""
    return name in inspect.signature(model.forward).parameters
