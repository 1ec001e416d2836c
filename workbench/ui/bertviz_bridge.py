"""bertviz's own head and model views, fed from an ``AttentionResult``: ``workbench.ui.to_bertviz(result)``.

It lives with the views because it returns an IPython HTML object; the result itself stays plain data.

bertviz loads require.js, d3 and jQuery from a CDN: its views work where a CDN is in reach
(Binder, Colab) and show "require is not defined" offline. Offline, use ``AttentionView``.
"""

from __future__ import annotations

from typing import Any, Literal

from workbench.errors import WorkbenchError
from workbench.explain.attention import AttentionResult

__all__ = ["to_bertviz"]


def to_bertviz(result: AttentionResult, view: Literal["head", "model"] = "head") -> Any:
    """bertviz's ``head_view`` or ``model_view`` of the result, as an IPython HTML object to display.

    Raises ``ValueError`` for another view and ``WorkbenchError`` when bertviz is not installed.
    Example: ``to_bertviz(attention(bundle, "The cat sat."), "model")``.
    """
    if view not in ("head", "model"):
        raise ValueError(f"view must be 'head' or 'model', got {view!r}.")
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
