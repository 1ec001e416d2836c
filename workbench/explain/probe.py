"""Probes: what a model predicts for a masked token, or for the next token."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from workbench.errors import ProbeError
from workbench.explain.inputs import (
    MASK_PLACEHOLDER,
    check_text,
    check_top_k,
    display_token,
    encode,
    inference,
    with_model_mask,
)
from workbench.explain.output_head import head_only_at

if TYPE_CHECKING:
    from workbench.models import ModelBundle

# ProbeError lives in workbench.errors; it stays importable from here, where it was first defined.
__all__ = ["FillMaskResult", "ProbeError", "TokenPrediction", "fill_mask", "next_token", "predicted_distribution"]


@dataclass
class TokenPrediction:
    """The top-k predictions at one position: token strings as a reader writes them, and probabilities."""

    position: int
    tokens: list[str]
    token_ids: list[int]
    probabilities: np.ndarray  # (top_k,)

    def to_dict(self) -> dict[str, Any]:
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

    words_: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def words(self) -> list[dict[str, Any]]:
        """Runs of adjacent masks read as one word: ``{"positions", "candidates": [(word, joint probability)]}``.

        A word the tokenizer splits into pieces needs one mask per piece; each candidate fills the run
        left to right (the top-k for the first piece, then the most likely next piece given it).
        """
        return self.words_

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model": self.model,
            "predictions": [p.to_dict() for p in self.predictions],
            "words": self.words_,
        }

    def __str__(self) -> str:
        rows = []
        for p in self.predictions:
            rows.append("  ".join(f"{t!r} {prob:.3f}" for t, prob in zip(p.tokens, p.probabilities, strict=True)))
        return f"{self.text}\n" + "\n".join(f"  [{i}] {r}" for i, r in enumerate(rows))


def _top(bundle: ModelBundle, logits: torch.Tensor, position: int, top_k: int) -> TokenPrediction:
    probs = logits.float().softmax(-1)
    values, ids = probs.topk(min(top_k, probs.shape[-1]))
    ids_list = [int(i) for i in ids]
    return TokenPrediction(
        position, [display_token(bundle.tokenizer, i) for i in ids_list], ids_list, values.cpu().numpy()
    )


def fill_mask(bundle: ModelBundle, text: str, top_k: int = 5) -> FillMaskResult:
    """Top-k predictions at every mask in ``text`` (write ``[MASK]`` or the model's own mask token).

    Raises ``ProbeError`` when the text is empty, has no mask, is too long, or the model has no masked-LM head.
    """
    text, top_k = check_text(text), check_top_k(top_k)
    tok = bundle.tokenizer
    if bundle.kind != "masked-lm" or tok.mask_token is None:
        raise ProbeError(f"fill_mask needs a masked language model; {bundle.name} is a {bundle.kind} model.")
    model_text = with_model_mask(tok, text)
    if tok.mask_token not in model_text:
        raise ProbeError(f"The text has no mask; put {MASK_PLACEHOLDER} where the model should guess a word.")
    enc = encode(bundle, model_text)
    positions = (enc["input_ids"][0] == tok.mask_token_id).nonzero().flatten().tolist()
    with inference(bundle.model):
        with head_only_at(bundle.model, torch.tensor([positions])):
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


def _fill_run(
    bundle: ModelBundle, enc: dict[str, torch.Tensor], run: list[int], first: TokenPrediction
) -> dict[str, Any]:
    """Each top-k first piece, then the most likely next piece given the pieces before (one forward per piece)."""
    candidates = []
    for token_id, probability in zip(first.token_ids, first.probabilities, strict=True):
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
        candidates.append((str(bundle.tokenizer.decode(pieces)).strip(), joint))
    candidates.sort(key=lambda c: -c[1])
    return {"positions": run, "candidates": candidates}


def predicted_distribution(bundle: ModelBundle, text: str) -> tuple[torch.Tensor, int]:
    """The model's probabilities over the vocabulary where it guesses ``(vocab,)``: at the first mask of a
    masked LM, after the last token of a causal LM; and that position. Raises ``ProbeError`` as the probes do."""
    text = check_text(text)
    tok = bundle.tokenizer
    if bundle.kind == "masked-lm":
        model_text = with_model_mask(tok, text)
        enc = encode(bundle, model_text)
        masks = (enc["input_ids"][0] == tok.mask_token_id).nonzero().flatten().tolist()
        if not masks:
            raise ProbeError(f"The text has no mask; put {MASK_PLACEHOLDER} where the model should guess a word.")
        position = masks[0]
    elif bundle.kind == "causal-lm":
        enc = encode(bundle, text)
        position = enc["input_ids"].shape[1] - 1
    else:
        raise ProbeError(f"Probes need a masked or causal language model; {bundle.name} is a {bundle.kind} model.")
    with inference(bundle.model), head_only_at(bundle.model, torch.tensor([[position]])):
        logits = bundle.model(**enc).logits[0, 0]  # (vocab,)
    return logits.float().softmax(-1), position


def next_token(bundle: ModelBundle, text: str, top_k: int = 5) -> TokenPrediction:
    """Top-k next tokens after ``text`` for a causal language model."""
    text, top_k = check_text(text), check_top_k(top_k)
    if bundle.kind != "causal-lm":
        raise ProbeError(f"next_token needs a causal language model; {bundle.name} is a {bundle.kind} model.")
    enc = encode(bundle, text)
    last = enc["input_ids"].shape[1] - 1
    with inference(bundle.model), head_only_at(bundle.model, torch.tensor([[last]])):
        logits = bundle.model(**enc).logits[0, 0]  # (vocab,)
    return _top(bundle, logits, last, top_k)
