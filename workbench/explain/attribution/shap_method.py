"""SHAP: shap's Partition explainer with its Text masker, on a batched inference function of ours.

shap's usual route for text wraps a transformers pipeline, which runs one masked text at a
time through the pipeline's pre- and post-processing. Here the explainer, the masker, its
clustering and its batch size are shap's own (so the values are the same); only the function it
calls is different: the masked texts of one call are tokenized together, scored in batches sized
to a memory budget, and repeated masks are answered from a cache. For a BERT classifier the
scoring goes through ``FastEncoder``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.errors import AttributionError
from workbench.explain.attribution.objective import MethodOutput, Objective

__all__ = ["shap_footprint", "shap_values"]


class _MaskedTextModel:
    """shap's model function: masked texts (or masked token-id rows) in, ``(rows, outputs)`` out, cached."""

    def __init__(self, objective: Objective, strings: bool):
        self.objective = objective
        self.strings = strings
        self.cache: dict[Any, np.ndarray] = {}
        self.calls = 0
        self.hits = 0

    def __call__(self, batch: Any) -> np.ndarray:
        obj = self.objective
        keys = [str(x) if self.strings else tuple(int(t) for t in x) for x in batch]
        missing = list(dict.fromkeys(k for k in keys if k not in self.cache))
        if missing:
            if self.strings:
                rows = obj.bundle.tokenizer(missing, verbose=False)["input_ids"]
                too_long = max(len(r) for r in rows) > obj.bundle.max_positions
                if too_long:
                    raise AttributionError(
                        "A masked copy of the text is longer than the model takes; shorten the text."
                    )
            else:
                rows = [list(k) for k in missing]
            for key, values in zip(missing, obj.outputs_ids(rows), strict=True):
                self.cache[key] = values
        self.calls += len(keys)
        self.hits += len(keys) - len(missing)
        out = np.stack([self.cache[k] for k in keys])  # (rows, outputs)
        return out if obj.task == "classify" else out[:, 0]


def _check_max_evals(max_evals: object) -> int:
    if not isinstance(max_evals, int) or isinstance(max_evals, bool) or max_evals < 3:
        raise AttributionError(f"max_evals must be an integer of at least 3, got {max_evals!r}.")
    return max_evals


def shap_footprint(objective: Objective, *, max_evals: int = 500, seed: int = 0) -> tuple[int, str]:
    """One row forward, and what shap and our cache hold per masked input: its mask, its masked text
    or ids, and its outputs."""
    obj = objective
    per_input = 24 * len(obj.input_ids) + 4 * len(obj.text) + 8 * obj.num_outputs + 256
    return obj.step_bytes() + _check_max_evals(max_evals) * per_input, "a shorter text or fewer max_evals"


def shap_values(objective: Objective, *, max_evals: int = 500, seed: int = 0) -> MethodOutput:
    """Partition SHAP values of every token toward the objective's target; ``(scores, extra, route)``."""
    import shap

    _check_max_evals(max_evals)
    obj = objective
    # A masked LM's target sits at a fixed position: masked copies go to the model as token ids, one
    # for one, so no re-tokenization can move it. Classifiers and causal LMs get masked strings, as
    # in shap's own pipeline route.
    strings = obj.task != "masked-lm"
    masker = shap.maskers.Text(obj.bundle.tokenizer, output_type="string" if strings else "token_ids")
    model = _MaskedTextModel(obj, strings)
    names = obj.bundle.label_names if obj.task == "classify" else None
    explainer = shap.Explainer(model, masker, algorithm="partition", output_names=names, seed=seed)
    # The Partition explainer breaks ties between equally promising masks with numpy's global random
    # numbers (its own ``seed`` is unused): seed them, so one seed gives one answer, and give the
    # caller's random state back afterwards.
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        explanation = explainer([obj.text], max_evals=max_evals, silent=True)
    finally:
        np.random.set_state(state)
    values = np.asarray(explanation.values[0], dtype=np.float64)  # (tokens,) or (tokens, labels)
    base = np.asarray(explanation.base_values[0], dtype=np.float64)
    if values.ndim == 2:
        values, base = values[:, obj.target], base[obj.target]
    if len(values) != len(obj.input_ids):
        raise AttributionError(
            "shap's Text masker split the text into different tokens than the model's tokenizer; "
            "this tokenizer is not supported by the shap method, use another method."
        )
    scores = np.where(obj.features, values, 0.0)
    extra = {
        "max_evals": max_evals,
        "seed": seed,
        "base_value": float(base),
        "masked_inputs": model.calls,
        "cache_hits": model.hits,
        "masker": "Text, " + ("strings" if strings else "token ids"),
    }
    return scores, extra, "shap Partition explainer"
