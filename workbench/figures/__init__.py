"""Plotly figures for the workbench's results (the view side: this package may import plotly).

``plot(result)`` returns a ``plotly.graph_objects.Figure`` chosen by the result's type, with the numbers on
hover; ``compare_runs`` overlays training runs; ``project`` draws texts' representations in 2-D or 3-D.
Figures render offline in JupyterLab 4, Notebook 7 and VS Code (plotly's own renderer, shipped with
plotly), on Colab as plotly's widget through Colab's widget manager (no CDN), and work outside Jupyter:
``fig.write_html(path)``, ``fig.write_image(path)`` where kaleido exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.figures._colab import use_widget_renderer_on_colab
from workbench.figures._registry import FigureError, builder_for, figure_for, plot

if TYPE_CHECKING:
    from workbench.figures.projector import project
    from workbench.figures.training import compare_runs

__all__ = ["FigureError", "builder_for", "compare_runs", "figure_for", "plot", "project"]

_LATER = {"compare_runs": "workbench.figures.training", "project": "workbench.figures.projector"}


use_widget_renderer_on_colab()


def __getattr__(name: str) -> Any:
    if name in _LATER:
        import importlib

        return getattr(importlib.import_module(_LATER[name]), name)
    raise AttributeError(f"module 'workbench.figures' has no attribute {name!r}")
