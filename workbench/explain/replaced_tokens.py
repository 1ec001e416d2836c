"""The replaced-token probe: for any text, the ELECTRA discriminator's probability that each token was replaced.

A discriminator trained with ``Trainer(bundle, "replaced-token", corpus)`` flags the tokens its generator put
in the place of others; on a person's text it becomes a detector of odd words: a word that does not fit
its context reads as "replaced".

Example::

    result = replaced_tokens(bundle, "The cat sat on the carburettor.")
    result.suspects()      # [(6, 'carburettor', 0.91)]: the tokens it thinks were replaced
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from workbench.errors import ProbeError
from workbench.explain.inputs import check_text, encode, inference
from workbench.explain.tokens import TokenInfo, text_tokens
from workbench.models.objective_heads import REPLACED_TOKEN, encoder_of

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["ReplacedTokenResult", "replaced_tokens"]


@dataclass
class ReplacedTokenResult:
    """Per token of ``text``: how a reader sees it (``tokens``) and the probability it was replaced.

    ``probabilities`` is ``(tokens,)``; special tokens (``tokens.special``) keep theirs, but the
    discriminator never learned about them: read only the others. ``space_after`` says where the text has
    whitespace after a token, to lay the tokens out as the text."""

    text: str
    model: str
    tokens: TokenInfo
    probabilities: np.ndarray
    space_after: list[bool]

    def suspects(self, threshold: float = 0.5) -> list[tuple[int, str, float]]:
        """(position, token, probability) of every real token above ``threshold``, likeliest first."""
        found = [
            (i, text, float(p))
            for i, (text, p, special) in enumerate(
                zip(self.tokens.text, self.probabilities, self.tokens.special, strict=True)
            )
            if not special and p > threshold
        ]
        return sorted(found, key=lambda item: -item[2])

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model": self.model,
            "tokens": self.tokens.to_dict(),
            "probabilities": [round(float(p), 6) for p in self.probabilities],
            "space_after": list(self.space_after),
        }


def replaced_tokens(bundle: ModelBundle, text: str) -> ReplacedTokenResult:
    """The probability that each token of ``text`` was replaced, by ``bundle``'s replaced-token head.

    Returns a ``ReplacedTokenResult``. Raises ``ProbeError`` when the text is empty or too long, or the bundle
    has no replaced-token head (train one with ``Trainer(bundle, "replaced-token", corpus)``)."""
    text = check_text(text)
    head = bundle.heads.get(REPLACED_TOKEN)
    if head is None:
        raise ProbeError(
            f"{bundle.name} has no replaced-token head; train one with Trainer(bundle, 'replaced-token', corpus) "
            "on an encoder, or load a folder such a run saved."
        )
    encoder = encoder_of(bundle)
    enc = encode(bundle, text)
    tokens = text_tokens(bundle, text)
    with inference(encoder):
        states = encoder(**enc).last_hidden_state[0]  # (tokens, hidden)
        was_training = head.training
        head.eval()
        try:
            logits = head(states.to(next(head.parameters()).dtype)).float()  # (tokens,)
        finally:
            head.train(was_training)
    probabilities = torch.sigmoid(logits).cpu().numpy()  # (tokens,)
    return ReplacedTokenResult(text, bundle.name, tokens, probabilities, _space_after(bundle, text))


def _space_after(bundle: ModelBundle, text: str) -> list[bool]:
    """Whether whitespace follows each token in ``text`` (special tokens: False)."""
    offsets = bundle.tokenizer(text, return_offsets_mapping=True, verbose=False)["offset_mapping"]
    spaces = []
    for start, end in offsets:
        spaces.append(end > start and end < len(text) and text[end].isspace())
    return spaces
