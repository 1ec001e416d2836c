"""One entry point, ``plot(result)``: the figure is chosen by the result's type, as attribution methods are by name.

Each figure module registers its builders with ``@figure_for("package.module.ClassName")``. Types are named,
not imported, so importing ``workbench.figures`` loads no model code; a result is matched against its class
and each base class in turn. A list of results is matched on its first element, with ``many=True``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

Builder = Callable[..., Any]

_ONE: dict[str, Builder] = {}
_MANY: dict[str, Builder] = {}

# The modules that register builders, imported on the first call to plot().
FIGURE_MODULES = (
    "workbench.figures.lens",
    "workbench.figures.readouts",
    "workbench.figures.interventions",
    "workbench.figures.attention",
    "workbench.figures.attribution",
    "workbench.figures.compression",
    "workbench.figures.training",
    "workbench.figures.classifier",
    "workbench.figures.projector",
    "workbench.figures.sentence_pair",
    "workbench.figures.replaced_tokens",
)


class FigureError(WorkbenchError, TypeError):
    """``plot`` was given something it has no figure for, or an option its figure does not take."""


def figure_for(type_name: str, *, many: bool = False) -> Callable[[Builder], Builder]:
    """Register a builder for results of ``type_name`` (``"module.Class"``); ``many`` for a list of them."""

    def register(builder: Builder) -> Builder:
        (_MANY if many else _ONE)[type_name] = builder
        return builder

    return register


@functools.cache
def _load_modules() -> None:
    for name in FIGURE_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:  # a module that exists but fails to import is a bug: say so
                raise


def _type_names(value: object) -> list[str]:
    return [f"{cls.__module__}.{cls.__qualname__}" for cls in type(value).__mro__]


def _find(value: object, table: dict[str, Builder]) -> Builder | None:
    for name in _type_names(value):
        if name in table:
            return table[name]
    return None


def _known() -> str:
    names = sorted({name.rsplit(".", 1)[1] for name in _ONE} | {f"[{name.rsplit('.', 1)[1]}, ...]" for name in _MANY})
    return ", ".join(names)


def builder_for(result: object) -> Builder:
    """The registered builder for ``result``; raises ``FigureError`` with the types there are figures for."""
    _load_modules()
    if isinstance(result, (str, Path)):
        builder = _ONE.get("pathlib.Path")
        if builder is not None:
            return builder
    if isinstance(result, Sequence) and not isinstance(result, (str, bytes)) and len(result) > 0:
        found = _find(result[0], _MANY)
        if found is not None:
            return found
        raise FigureError(
            f"plot() has no figure for a list of {type(result[0]).__name__}; lists are drawn for: "
            f"{', '.join(sorted(name.rsplit('.', 1)[1] for name in _MANY))}. Plot one at a time instead."
        )
    found = _find(result, _ONE)
    if found is None:
        what = "an empty list" if isinstance(result, Sequence) and not result else _article(type(result).__name__)
        raise FigureError(f"plot() was given {what}; it draws the results of workbench calls: {_known()}.")
    return found


def plot(result: object, **options: Any) -> Any:
    """A ``plotly.graph_objects.Figure`` for ``result``: labelled axes, the numbers on hover.

    ``result`` is what a workbench call returned (a ``LogitLensResult``, an ``AttentionResult``, a list of
    ``AttributionResult`` ...), a ``TrainingHistory``, or a run folder. ``options`` are the figure's own
    (``plot(attention_result, head=(2, 3))``); an unknown one raises ``FigureError`` naming those it takes.

    Example::

        fig = plot(logit_lens(bundle, "The capital of France is", target=" Paris"))
        fig.write_html("lens.html")  # works outside Jupyter too
    """
    builder = builder_for(result)
    signature = inspect.signature(builder)
    accepted = [name for name, p in list(signature.parameters.items())[1:] if p.kind is p.KEYWORD_ONLY]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = sorted(set(options) - set(accepted))
    if unknown and not takes_any:
        takes = ", ".join(accepted) if accepted else "no options"
        raise FigureError(
            f"plot() of a {_describe(result)} got an unknown option {', '.join(map(repr, unknown))}; it takes: {takes}."
        )
    return builder(result, **options)


def _describe(result: object) -> str:
    if isinstance(result, Sequence) and not isinstance(result, (str, bytes)) and result:
        return f"list of {type(result[0]).__name__}"
    return type(result).__name__


def _article(name: str) -> str:
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"
