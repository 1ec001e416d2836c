"""Probes: what a model predicts for a masked token, or for the next token."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from workbench.errors import WorkbenchError

__all__ = ["FillMaskResult", "ProbeError", "TokenPrediction", "fill_mask", "next_token"]

MASK_PLACEHOLDER = "[MASK]"  # accepted for any masked LM, whatever its own mask token is


class ProbeError(WorkbenchError, ValueError):
    """A probe's text or model does not fit the probe."""


@dataclass
class TokenPrediction:
    """The top-k predictions at one position: token strings as a reader writes them, and probabilities."""

    position: int
    tokens: list[str]
    token_ids: list[int]
    probabilities: np.ndarray  # (top_k,)

    def to_dict(self) -> dict:
        return {
            "position": self.position,
            "tokens": self.tokens,
            "token_ids": self.token_ids,
            "probabilities": [round(float(p), 6) for p in self.probabilities],
        }


@dataclass
class FillMaskResult:
    """Predictions for each masked position of ``text``, in order."""

    text: str
    model: str
    predictions: list[TokenPrediction] = field(default_factory=list)

    words_: list[dict] = field(default_factory=list, repr=False)

    def words(self) -> list[dict]:
        """Runs of adjacent masks read as one word: ``{"positions", "candidates": [(word, joint probability)]}``.

        A word the tokenizer splits into pieces needs one mask per piece; each candidate fills the run
        left to right (the top-k for the first piece, then the most likely next piece given it).
        """
        return self.words_

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "model": self.model,
            "predictions": [p.to_dict() for p in self.predictions],
            "words": self.words_,
        }

    def __str__(self) -> str:
        rows = []
        for p in self.predictions:
            rows.append("  ".join(f"{t!r} {prob:.3f}" for t, prob in zip(p.tokens, p.probabilities)))
        return f"{self.text}\n" + "\n".join(f"  [{i}] {r}" for i, r in enumerate(rows))


def _check_text(text: Any, what: str = "The probe text", error: type[Exception] | None = None) -> str:
    """``text`` if it is a non-empty string of valid Unicode; otherwise ``error`` (ProbeError) with a sentence."""
    error = error or ProbeError
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


def _with_model_mask(tokenizer: Any, text: str) -> str:
    """``text`` with ``[MASK]`` written as the model's own mask token (ModernBERT, RoBERTa: ``<mask>``...)."""
    mask = tokenizer.mask_token
    return text.replace(MASK_PLACEHOLDER, mask) if mask and mask != MASK_PLACEHOLDER else text


def _check_top_k(top_k: Any) -> int:
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ProbeError(f"top_k must be a positive integer, got {top_k!r}.")
    return top_k


def _display(tokenizer: Any, token_id: int) -> str:
    """A token as a reader writes it: byte-level pieces decoded, word-piece '##' kept as a continuation mark."""
    piece = tokenizer.convert_ids_to_tokens(int(token_id))
    if piece is not None and piece.startswith("##"):
        return piece
    return tokenizer.decode([int(token_id)])


def _encode(bundle: Any, text: str) -> dict:
    enc = bundle.tokenizer(text, return_tensors="pt")
    n = enc["input_ids"].shape[1]
    if n > bundle.max_positions:
        raise ProbeError(
            f"The text is {n} tokens long but {bundle.name} takes at most {bundle.max_positions}; shorten it."
        )
    return {k: v.to(bundle.device) for k, v in enc.items()}


@contextlib.contextmanager
def _inference(model: Any) -> Iterator[None]:
    """Eval mode (no dropout) and no gradients for the call; the model's mode is restored after."""
    was_training = model.training
    if was_training:  # switching walks every module: about 1 ms on a small model, so only when needed
        model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        if was_training:
            model.train()


def _token_id(tokenizer: Any, target: Any, vocab_size: int) -> int:
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
        shown = " ".join(repr(_display(tokenizer, p)) for p in pieces)
        raise ProbeError(
            f"The target {target!r} is {len(pieces)} tokens ({shown}); pass one of them (a string or its id)."
        )
    raise ProbeError(f"A target token is a non-empty string or an id, got {type(target).__name__}.")


def output_vocabulary(model: Any) -> int:
    """How many tokens the model's output head scores (its weight may be packed, as in an int8 model)."""
    weight = getattr(model.get_output_embeddings(), "weight", None)
    return int(weight.shape[0]) if isinstance(weight, torch.Tensor) else int(model.config.vocab_size)


def _output_head(model: Any) -> Any:
    """The first module after the encoder that works position by position: BERT's MLM head, ModernBERT's
    prediction head, a causal LM's unembedding. Running it at only the positions read saves its cost elsewhere."""
    children = dict(model.named_children())
    for name in ("cls", "head"):
        if name in children:
            return children[name]
    return model.get_output_embeddings()


@contextlib.contextmanager
def _read_positions(model: Any, positions: torch.Tensor) -> Iterator[None]:
    """Within the block, the model's output head runs only at ``positions`` ``(batch, k)``: logits come
    back as ``(batch, k, vocab)`` instead of ``(batch, n, vocab)``."""
    head = _output_head(model)

    def gather(_module: Any, args: tuple) -> tuple:
        hidden = args[0]  # (batch, n, hidden)
        rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None]
        return (hidden[rows, positions.to(hidden.device)],) + tuple(args[1:])  # (batch, k, hidden)

    handle = head.register_forward_pre_hook(gather)
    try:
        yield
    finally:
        handle.remove()


def _top(bundle: Any, logits: torch.Tensor, position: int, top_k: int) -> TokenPrediction:
    probs = logits.float().softmax(-1)
    values, ids = probs.topk(min(top_k, probs.shape[-1]))
    ids_list = [int(i) for i in ids]
    return TokenPrediction(position, [_display(bundle.tokenizer, i) for i in ids_list], ids_list, values.cpu().numpy())


def fill_mask(bundle: Any, text: str, top_k: int = 5) -> FillMaskResult:
    """Top-k predictions at every mask in ``text`` (write ``[MASK]`` or the model's own mask token).

    Raises ``ProbeError`` when the text is empty, has no mask, is too long, or the model has no masked-LM head.
    """
    text, top_k = _check_text(text), _check_top_k(top_k)
    tok = bundle.tokenizer
    if bundle.kind != "masked-lm" or tok.mask_token is None:
        raise ProbeError(f"fill_mask needs a masked language model; {bundle.name} is a {bundle.kind} model.")
    model_text = _with_model_mask(tok, text)
    if tok.mask_token not in model_text:
        raise ProbeError(f"The text has no mask; put {MASK_PLACEHOLDER} where the model should guess a word.")
    enc = _encode(bundle, model_text)
    positions = (enc["input_ids"][0] == tok.mask_token_id).nonzero().flatten().tolist()
    with _inference(bundle.model):
        with _read_positions(bundle.model, torch.tensor([positions])):
            logits = bundle.model(**enc).logits[0]  # (masks, vocab): the head runs at the masks only
        result = FillMaskResult(text, bundle.name, [_top(bundle, logits[i], p, top_k) for i, p in enumerate(positions)])
        result.words_ = [
            _fill_run(bundle, enc, run, result.predictions[positions.index(run[0])])
            for run in _adjacent_runs(positions)
            if len(run) > 1
        ]
    return result


def _adjacent_runs(positions: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for p in positions:
        if runs and runs[-1][-1] == p - 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return runs


def _fill_run(bundle: Any, enc: dict, run: list[int], first: TokenPrediction) -> dict:
    """Each top-k first piece, then the most likely next piece given the pieces before (one forward per piece)."""
    candidates = []
    for token_id, probability in zip(first.token_ids, first.probabilities):
        ids = enc["input_ids"].clone()
        ids[0, run[0]] = token_id
        joint = float(probability)
        pieces = [token_id]
        for position in run[1:]:
            probs = bundle.model(**{**enc, "input_ids": ids}).logits[0, position].float().softmax(-1)
            piece = int(probs.argmax())
            joint *= float(probs[piece])
            ids[0, position] = piece
            pieces.append(piece)
        candidates.append((bundle.tokenizer.decode(pieces).strip(), joint))
    candidates.sort(key=lambda c: -c[1])
    return {"positions": run, "candidates": candidates}


def _distribution(bundle: Any, text: str) -> tuple[torch.Tensor, int]:
    """The model's probabilities over the vocabulary where it guesses: at the first mask of a masked
    LM, after the last token of a causal LM; and that position. Raises ``ProbeError`` as the probes do."""
    text = _check_text(text)
    tok = bundle.tokenizer
    if bundle.kind == "masked-lm":
        model_text = _with_model_mask(tok, text)
        enc = _encode(bundle, model_text)
        masks = (enc["input_ids"][0] == tok.mask_token_id).nonzero().flatten().tolist()
        if not masks:
            raise ProbeError(f"The text has no mask; put {MASK_PLACEHOLDER} where the model should guess a word.")
        position = masks[0]
    elif bundle.kind == "causal-lm":
        enc = _encode(bundle, text)
        position = enc["input_ids"].shape[1] - 1
    else:
        raise ProbeError(f"Probes need a masked or causal language model; {bundle.name} is a {bundle.kind} model.")
    with _inference(bundle.model), _read_positions(bundle.model, torch.tensor([[position]])):
        logits = bundle.model(**enc).logits[0, 0]  # (vocab,)
    return logits.float().softmax(-1), position


def next_token(bundle: Any, text: str, top_k: int = 5) -> TokenPrediction:
    """Top-k next tokens after ``text`` for a causal language model."""
    text, top_k = _check_text(text), _check_top_k(top_k)
    if bundle.kind != "causal-lm":
        raise ProbeError(f"next_token needs a causal language model; {bundle.name} is a {bundle.kind} model.")
    enc = _encode(bundle, text)
    last = enc["input_ids"].shape[1] - 1
    with _inference(bundle.model), _read_positions(bundle.model, torch.tensor([[last]])):
        logits = bundle.model(**enc).logits[0, 0]  # (vocab,)
    return _top(bundle, logits, last, top_k)
