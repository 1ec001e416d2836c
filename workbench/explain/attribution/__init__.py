"""Token attributions: one entry point, ``attribute``, for every method, and one result type.

Methods: ``"shap"`` (shap's Partition explainer on a batched inference function),
``"integrated_gradients"``, ``"gradient_x_input"``, ``"occlusion"`` and ``"attention_rollout"``.
Each explains the probability of one target: a classifier's label, the token at a masked
position (masked LM), or the next token (causal LM). Every result carries its faithfulness
scores.

Example::

    from workbench.explain import attribute
    result = attribute(bundle, "A gripping, funny film.", target="positive", method="shap")
    result.top(3), result.faithfulness.comprehensiveness
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from workbench.errors import AttributionError
from workbench.explain.attribution.gradients import (
    gradient_x_input,
    gradient_x_input_footprint,
    integrated_gradients,
    integrated_gradients_footprint,
)
from workbench.explain.attribution.objective import MethodOutput, Objective, evaluation, make_objective, tokenized
from workbench.explain.attribution.occlusion import occlusion, occlusion_footprint
from workbench.explain.attribution.result import AttributionResult
from workbench.explain.attribution.rollout import rollout_footprint, rollout_prepare, rollout_scores
from workbench.explain.attribution.shap_method import shap_footprint, shap_values
from workbench.explain.budget import memory_budget
from workbench.explain.faithfulness import DELETION_POINTS, FRACTIONS, score_ranking

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = [
    "METHODS",
    "AttributionError",
    "AttributionResult",
    "Method",
    "attribute",
    "attribute_many",
    "require_budget",
]


class Method(NamedTuple):
    """An attribution method: how it scores, the options it takes, what its smallest step needs
    (bytes, and what to do when that is too much), and what it reads before the model runs."""

    function: Callable[..., MethodOutput]
    options: tuple[str, ...]
    footprint: Callable[..., tuple[int, str]]  # (objective, **options) -> (bytes, advice)
    prepare: Callable[[Objective], None] | None = None


METHODS: dict[str, Method] = {
    "shap": Method(shap_values, ("max_evals", "seed"), shap_footprint),
    "integrated_gradients": Method(integrated_gradients, ("steps",), integrated_gradients_footprint),
    "gradient_x_input": Method(gradient_x_input, (), gradient_x_input_footprint),
    "occlusion": Method(occlusion, ("window",), occlusion_footprint),
    "attention_rollout": Method(rollout_scores, (), rollout_footprint, rollout_prepare),
}


def _check_method(method: str, options: dict[str, Any]) -> Method:
    if method not in METHODS:
        raise AttributionError(f"Unknown attribution method {method!r}; choose one of {', '.join(METHODS)}.")
    entry = METHODS[method]
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        takes = ", ".join(entry.options) if entry.options else "no options"
        raise AttributionError(f"The {method} method does not take {', '.join(unknown)}; it takes {takes}.")
    return entry


def _require(objective: Objective, method: str, options: dict[str, Any], faithfulness: bool) -> None:
    """Raise ``MemoryBudgetError`` when the method's smallest step, and faithfulness's rows of ids, do not fit."""
    needed, advice = METHODS[method].footprint(objective, **options)
    if faithfulness:
        needed += objective.ids_bytes(2 * (2 * len(FRACTIONS) + DELETION_POINTS))  # lists, and tuples of them
    objective.require(needed, f"the {method} attribution", advice)


def _budget_check(method: str, options: dict[str, Any], faithfulness: bool) -> Callable[[Objective], None]:
    """What ``attribute`` runs once the text is tokenized, before the model runs: the budget check,
    then what the method reads first (rollout's attention, which checks its own budget)."""
    prepare = METHODS[method].prepare

    def check(objective: Objective) -> None:
        _require(objective, method, options, faithfulness)
        if prepare is not None:
            prepare(objective)

    return check


def require_budget(
    bundle: ModelBundle,
    text: str,
    method: str = "shap",
    *,
    faithfulness: bool = True,
    memory_mb: int | None = None,
    **options: Any,
) -> None:
    """Raise ``MemoryBudgetError`` when ``attribute(bundle, text, method=method, ...)`` cannot fit its
    budget (the check ``attribute`` makes first), without running the model. Also raises what
    ``attribute`` raises for a bad text, method or option name."""
    _check_method(method, options)
    _require(tokenized(bundle, text, memory_budget(memory_mb)), method, options, faithfulness)


def attribute(
    bundle: ModelBundle,
    text: str,
    target: Any = None,
    method: str = "shap",
    *,
    faithfulness: bool = True,
    memory_mb: int | None = None,
    **options: Any,
) -> AttributionResult:
    """Score each token of ``text`` for how much it raises the probability of ``target``.

    ``target``: a label name or index (classifier), a token string or id (language models), or
    None for the model's own top prediction. ``method``: one of ``METHODS``. ``options``:
    ``max_evals`` and ``seed`` (shap), ``steps`` (integrated gradients), ``window`` (occlusion).
    ``memory_mb`` is the call's budget (default: the kernel's, ``set_memory_budget``); batches of
    activations take a quarter of it. Returns an ``AttributionResult`` with its faithfulness scores
    (``faithfulness=False`` skips them). Raises ``AttributionError`` with a sentence for bad text,
    targets, methods or options, and ``MemoryBudgetError`` (before the model runs) for a bad
    ``memory_mb`` or when even the method's smallest step does not fit the budget.
    """
    entry = _check_method(method, options)
    budget = memory_budget(memory_mb)
    started = time.perf_counter()
    with evaluation(bundle.model):
        objective = make_objective(
            bundle, text, target, memory_mb=budget, prepare=_budget_check(method, options, faithfulness)
        )
        score = objective.score()
        baseline = float(objective.score_ids([objective.remove(objective.features)])[0])
        objective.evaluations = 0
        scores, extra, route = entry.function(objective, **options)
        evaluations = objective.evaluations
        seconds = time.perf_counter() - started
        result = _result(
            objective,
            method,
            scores,
            extra=extra,
            route=route,
            score=score,
            baseline=baseline,
            seconds=seconds,
            evaluations=evaluations,
        )
        if faithfulness:
            result.faithfulness = score_ranking(objective, result.scores)
    return result


def _result(
    obj: Objective,
    method: str,
    scores: Any,
    *,
    extra: dict[str, Any],
    route: str,
    score: float,
    baseline: float,
    seconds: float,
    evaluations: int,
) -> AttributionResult:
    import numpy as np

    dtype = str(next(obj.bundle.model.parameters()).dtype).replace("torch.", "")
    precision = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "float64": "fp64"}.get(dtype, dtype)
    if obj._fast is not None and method in ("shap", "occlusion"):
        route, precision = f"{route}; {obj._fast.route}", "fp32"
    else:
        route = f"{route}; the model's own forward, {precision}"
    return AttributionResult(
        model=obj.bundle.name,
        text=obj.text,
        method=method,
        task=obj.task,
        target=obj.target,
        target_name=obj.target_name,
        tokens=obj.tokens,
        segments=obj.segments,
        scores=np.asarray(scores, dtype=np.float32),
        features=obj.features.copy(),
        score=score,
        baseline_score=baseline,
        removal=obj.removal,
        route=route,
        precision=precision,
        seconds=seconds,
        evaluations=evaluations,
        position=obj.position,
        extra=extra,
        note=obj.note,
    )


def attribute_many(
    bundle: ModelBundle,
    texts: Sequence[str],
    target: Any = None,
    method: str | Sequence[str] = "shap",
    *,
    progress: bool = True,
    faithfulness: bool = True,
    memory_mb: int | None = None,
    **options: Any,
) -> list[AttributionResult]:
    """``attribute`` for each text, and for each method when ``method`` is a list, with a progress bar.

    Returns the results text by text, methods in the order given. Options a method does not take
    are not passed to it, so ``max_evals`` and ``steps`` can be given together. ``memory_mb`` is each
    call's budget (default: the kernel's); a bad one raises ``MemoryBudgetError`` before any runs.
    """
    from tqdm.auto import tqdm

    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise AttributionError("attribute_many takes a list of texts; for one text use attribute().")
    methods = [method] if isinstance(method, str) else list(method)
    for m in methods:
        if m not in METHODS:
            raise AttributionError(f"Unknown attribution method {m!r}; choose one of {', '.join(METHODS)}.")
    known = {o for m in methods for o in METHODS[m].options}
    unknown = sorted(set(options) - known)
    if unknown:
        raise AttributionError(f"No chosen method takes {', '.join(unknown)}.")
    memory_budget(memory_mb)
    results = []
    with tqdm(total=len(texts) * len(methods), disable=not progress, desc="attributions", unit="result") as bar:
        for text in texts:
            for m in methods:
                taken = {k: v for k, v in options.items() if k in METHODS[m].options}
                results.append(
                    attribute(bundle, text, target, m, faithfulness=faithfulness, memory_mb=memory_mb, **taken)
                )
                bar.update(1)
    return results
