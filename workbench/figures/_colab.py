"""Figures on Colab without a CDN: shown as plotly's own widget, whose JavaScript comes from the kernel.

Colab puts each output in a frame of its own, so plotly's Colab renderer loads plotly.js from a CDN for
every figure. Colab's custom widget manager (which the views already need, see ``workbench.ui._colab``)
loads a widget's module from the kernel instead: plotly's ``FigureWidget`` carries plotly.js in it.
Elsewhere nothing changes: JupyterLab, Notebook 7 and VS Code draw plotly's own mime type offline.
"""

from __future__ import annotations

import sys
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer

RENDERER = "workbench_colab"


class ColabWidgetRenderer(MimetypeRenderer):  # type: ignore[misc]
    """Renders a figure as a ``FigureWidget`` (its mime bundle names the widget, the kernel sends its code)."""

    def __init__(self) -> None:
        self.shown: list[Any] = []  # the widgets shown: a widget must outlive its output to stay live

    def to_mimebundle(self, fig_dict: dict[str, Any]) -> dict[str, Any]:
        widget = go.FigureWidget(fig_dict)
        self.shown.append(widget)
        bundle = widget._repr_mimebundle_()
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        return dict(data)


def use_widget_renderer_on_colab() -> bool:
    """On Colab, make the widget renderer plotly's default; elsewhere leave plotly's choice. True when set."""
    if "google.colab" not in sys.modules:
        return False
    if RENDERER not in pio.renderers:
        pio.renderers[RENDERER] = ColabWidgetRenderer()
    pio.renderers.default = RENDERER
    return True
