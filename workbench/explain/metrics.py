"""What an intervention measures: one number per run, read from the logits at one position.

``logit_diff(" Paris", " Rome")`` (the logit of the answer minus that of a wrong answer, as in
the IOI work) or ``probability(" Paris")``; a plain string means ``probability`` of that token, a
pair of strings ``logit_diff``. Any function from the logits at the read position ``(runs, vocab)``
to one number per run ``(runs,)`` also works.

Example::

    metric = bind_metric(bundle, (" Paris", " Rome"))
    metric(logits[:, -1])        # (runs,) float32
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch

from workbench.errors import ProbeError
from workbench.explain.inputs import display_token, token_id
from workbench.explain.output_head import output_vocabulary

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["BoundMetric", "Metric", "bind_metric", "logit_diff", "probability"]

MetricKind = Literal["logit_diff", "probability", "custom"]
LogitsMetric = Callable[[torch.Tensor], "torch.Tensor | float"]


@dataclass(frozen=True)
class Metric:
    """A metric before it knows the model's tokenizer: build it with :func:`logit_diff` or :func:`probability`."""

    kind: MetricKind
    tokens: tuple[str | int, ...] = ()
    function: LogitsMetric | None = None


def logit_diff(answer: str | int, wrong: str | int) -> Metric:
    """The logit of ``answer`` minus the logit of ``wrong`` (token strings or ids)."""
    return Metric("logit_diff", (answer, wrong))


def probability(target: str | int) -> Metric:
    """The probability of ``target`` (a token string or id)."""
    return Metric("probability", (target,))


@dataclass(frozen=True)
class BoundMetric:
    """A metric tied to one model's vocabulary: call it on logits ``(runs, vocab)`` to get ``(runs,)``."""

    name: str
    kind: MetricKind
    ids: tuple[int, ...]
    function: LogitsMetric | None = None

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if self.kind == "logit_diff":
            return (logits[:, self.ids[0]] - logits[:, self.ids[1]]).float()
        if self.kind == "probability":
            return torch.softmax(logits.float(), dim=-1)[:, self.ids[0]]
        assert self.function is not None
        value = self.function(logits)
        return _as_numbers(value, logits.shape[0], self.name)


def _as_numbers(value: object, runs: int, name: str) -> torch.Tensor:
    """A custom metric's value as ``(runs,)`` float32, or a sentence saying what it returned instead."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and runs == 1:
        return torch.tensor([float(value)])
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel() == runs:
        return value.reshape(runs).float()
    shown = (
        f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
        if isinstance(value, torch.Tensor)
        else repr(value)[:60]
    )
    raise ProbeError(
        f"The metric {name} must return one number per run (a float tensor of shape ({runs},)), but returned "
        f"{shown}; make it reduce the logits (runs, vocab) to one value per row."
    )


def bind_metric(bundle: ModelBundle, metric: object) -> BoundMetric:
    """``metric`` (a :class:`Metric`, a token string, a pair of token strings, or a function of the logits)
    tied to ``bundle``'s vocabulary. Raises ``ProbeError`` with a sentence for anything else."""
    vocab = output_vocabulary(bundle.model)
    tok = bundle.tokenizer
    if isinstance(metric, (str, int)) and not isinstance(metric, bool):
        metric = probability(metric)
    elif isinstance(metric, tuple) and len(metric) == 2 and all(isinstance(t, (str, int)) for t in metric):
        metric = logit_diff(metric[0], metric[1])
    if isinstance(metric, Metric):
        if metric.kind == "custom" and metric.function is not None:
            return BoundMetric(_function_name(metric.function), "custom", (), metric.function)
        ids = tuple(token_id(tok, t, vocab) for t in metric.tokens)
        shown = ", ".join(repr(display_token(tok, i)) for i in ids)
        if metric.kind == "logit_diff" and ids[0] == ids[1]:
            raise ProbeError(f"logit_diff needs two different tokens; both are {shown.split(', ')[0]}.")
        return BoundMetric(f"{metric.kind}({shown})", metric.kind, ids)
    if callable(metric):
        return BoundMetric(_function_name(metric), "custom", (), metric)
    raise ProbeError(
        "A metric is a target token (' Paris': its probability), a pair of tokens ((' Paris', ' Rome'): their "
        "logit difference), logit_diff(...)/probability(...), or a function of the logits; "
        f"got {type(metric).__name__}."
    )


def _function_name(function: Callable[..., object]) -> str:
    return str(getattr(function, "__name__", type(function).__name__))
