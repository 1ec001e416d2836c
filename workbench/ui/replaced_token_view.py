"""``ReplacedTokenView``: a text's tokens coloured by the ELECTRA discriminator's probability that each was replaced.

The attribution view's widget draws it (``attribution.js``): one row per text, tokens coloured like attributions
on one scale from 0 to 1 for every text, the probability on hover. Special tokens
are marked, not coloured: the discriminator does not judge them. Switches choose the text when there are
several.

Example::

    from workbench.explain.replaced_tokens import replaced_tokens
    from workbench.ui.replaced_token_view import ReplacedTokenView
    ReplacedTokenView([replaced_tokens(bundle, t) for t in ("The cat sat.", "The cat sang the mat.")])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import traitlets

from workbench.explain.replaced_tokens import ReplacedTokenResult
from workbench.ui.attribution_view import TokenScoresWidget

__all__ = ["ReplacedTokenView"]

TARGET = "replaced"  # the widget's target name: its header reads "p(replaced) = ..."
NOTE = (
    "Each token coloured by the discriminator's probability that it was replaced, on one scale from 0 (pale) to 1 "
    "(dark): a text with nothing odd in it stays pale. p(replaced) above is the highest of the text's tokens. "
    "Hover a token for its probability."
)


def _row(result: ReplacedTokenResult, text_index: int) -> dict[str, Any]:
    real = [not s for s in result.tokens.special]
    scores = [round(float(p), 6) for p in result.probabilities]
    return {
        "text": text_index,
        "method": "replaced-token",
        "target": 0,
        "target_name": TARGET,
        "score": max((s for s, r in zip(scores, real, strict=True) if r), default=0.0),
        "route": result.model,
        "seconds": 0.0,
        "tokens": list(result.tokens.text),
        "special": [bool(s) for s in result.tokens.special],
        "features": real,
        "spaces": [bool(s) for s in result.space_after],
        "scores": scores,
        "scale": 1.0,  # probabilities: every text on the same 0..1 scale, not each to its own likeliest token
        "faithfulness": None,
        "note": NOTE,
    }


class ReplacedTokenView(TokenScoresWidget):
    """One text at a time, its tokens coloured by p(replaced); a switch for the others; hover for the value."""

    target = traitlets.Unicode(TARGET).tag(sync=True)
    # No "lowers" end here: p(replaced) runs from 0 up.
    legend: traitlets.List[str] = traitlets.List(["", "original", "replaced"]).tag(sync=True)

    def __init__(
        self, results: ReplacedTokenResult | Sequence[ReplacedTokenResult], *, title: str = "", **kwargs: Any
    ) -> None:
        checked = self._results(results, ReplacedTokenResult, "workbench.explain.replaced_tokens.replaced_tokens")
        super().__init__(**kwargs)
        self.results = checked
        with self.hold_sync():
            self.texts = [r.text for r in self.results]
            self.rows = [_row(r, i) for i, r in enumerate(self.results)]
            self.title = title or f"Replaced tokens: {self.results[0].model}"
