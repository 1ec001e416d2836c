"""plot(): one entry point that picks the figure by the result's type, and says so when it has none."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workbench.figures import FigureError, builder_for, figure_for, plot
from workbench.figures._registry import _MANY, _ONE
from workbench.figures._style import text, token_axis


class _Point:
    def __init__(self, value: float) -> None:
        self.value = value


class _SubPoint(_Point):
    pass


@pytest.fixture
def registered():
    import plotly.graph_objects as go

    name = f"{__name__}._Point"

    @figure_for(name)
    def one(result, *, scale: float = 1.0):
        return go.Figure(go.Bar(y=[result.value * scale]))

    @figure_for(name, many=True)
    def many(results):
        return go.Figure(go.Bar(y=[r.value for r in results]))

    yield
    _ONE.pop(name)
    _MANY.pop(name)


def test_a_result_gets_the_figure_registered_for_its_type_or_a_base_type(registered):
    assert list(plot(_Point(2.0)).data[0].y) == [2.0]
    assert list(plot(_SubPoint(3.0), scale=2.0).data[0].y) == [6.0]
    assert list(plot([_Point(1.0), _Point(5.0)]).data[0].y) == [1.0, 5.0]


def test_an_unknown_option_names_the_options_the_figure_takes(registered):
    with pytest.raises(FigureError, match=r"unknown option 'colour'; it takes: scale"):
        plot(_Point(1.0), colour="red")


def test_something_without_a_figure_gets_one_sentence_listing_what_has_one():
    with pytest.raises(FigureError, match=r"plot\(\) was given an int; it draws the results of workbench calls: .*"):
        plot(3)
    with pytest.raises(FigureError, match="an empty list"):
        plot([])
    with pytest.raises(FigureError, match="no figure for a list of int"):
        builder_for([1, 2])


def test_markup_in_a_label_is_escaped_so_plotly_shows_it_as_text():
    assert text("<img src=x onerror=alert(1)> & <b>") == "&lt;img src=x onerror=alert(1)&gt; &amp; &lt;b&gt;"
    axis = token_axis(["the", "<b>", "the", " "])
    assert axis["tickvals"] == [0, 1, 2, 3]  # two "the" columns stay apart
    assert axis["ticktext"] == ["the", "&lt;b&gt;", "the", "␣"]


def test_importing_the_figures_package_loads_no_model_code():
    code = "import sys, workbench.figures; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_on_colab_a_figure_shows_as_plotlys_widget_with_no_cdn(monkeypatch):
    import json
    import types

    import plotly.graph_objects as go
    import plotly.io as pio

    from workbench.figures._colab import use_widget_renderer_on_colab

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(pio.renderers, "default", pio.renderers.default)
    assert use_widget_renderer_on_colab()
    bundle = go.Figure(go.Bar(y=[1.0, 2.0]))._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "cdn" not in json.dumps(bundle).lower() and "https://" not in json.dumps(bundle)


def test_elsewhere_plotlys_own_renderer_stays():
    from workbench.figures._colab import use_widget_renderer_on_colab

    assert "google.colab" not in sys.modules and not use_widget_renderer_on_colab()
