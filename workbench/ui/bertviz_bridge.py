"""bertviz's own head and model views, fed from an ``AttentionResult``: ``workbench.ui.to_bertviz(result)``.

It lives with the views because it returns an IPython HTML object; the result itself stays plain data.

bertviz loads require.js, d3 and jQuery from a CDN: its views work where a CDN is in reach
(Binder, Colab) and show "require is not defined" offline. Offline, use ``AttentionView``.
"""

from __future__ import annotations

from typing import Any, Literal

from workbench.errors import ProbeError, WorkbenchError
from workbench.explain.attention import AttentionResult

__all__ = ["BERTVIZ_MAX_TOKENS", "to_bertviz"]

BERTVIZ_MAX_TOKENS = 512  # bertviz draws every head's full map in the page: at 512 tokens it is ~0.9 GB of HTML


def to_bertviz(result: AttentionResult, view: Literal["head", "model"] = "head") -> Any:
    """bertviz's ``head_view`` or ``model_view`` of the result, as an IPython HTML object to display.

    Raises ``ValueError`` for another view, ``ProbeError`` for a result longer than ``BERTVIZ_MAX_TOKENS``
    or without its full weights (bertviz draws every head whole; ``AttentionView`` draws long texts), and
    ``WorkbenchError`` when bertviz is not installed.
    Example: ``to_bertviz(attention(bundle, "The cat sat."), "model")``.
    """
    if view not in ("head", "model"):
        raise ValueError(f"view must be 'head' or 'model', got {view!r}.")
    n = result.num_tokens
    if result.full_weights is None or n > BERTVIZ_MAX_TOKENS:
        kept = "" if result.full_weights is not None else " and keeps no full maps"
        redo = f"max_tokens={BERTVIZ_MAX_TOKENS}" if n > BERTVIZ_MAX_TOKENS else "keep_weights=True"
        raise ProbeError(
            f"bertviz draws every head's full map in the page, which works up to {BERTVIZ_MAX_TOKENS} tokens "
            f"kept in full; this result has {n:,}{kept}: open it in workbench.ui.AttentionView(result), which "
            f"shows long texts a window at a time, or call attention(..., {redo}) for bertviz."
        )
    try:
        import bertviz
        import torch
    except ImportError:
        raise WorkbenchError(
            "bertviz is not installed; `pip install bertviz`, or use workbench.ui.AttentionView "
            "(which also works offline)."
        ) from None
    attention = tuple(torch.from_numpy(result.weights[layer][None]) for layer in range(result.num_layers))
    tokens = [t if t else "·" for t in result.tokens.text]
    segment_b = [i for i, s in enumerate(result.tokens.segment_ids) if s == 1]
    start = segment_b[0] if segment_b else None
    draw = bertviz.head_view if view == "head" else bertviz.model_view
    return draw(attention, tokens, sentence_b_start=start, prettify_tokens=False, html_action="return")
