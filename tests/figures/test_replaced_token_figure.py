"""The replaced-token figure: one bar per token holding the probe's probabilities, coloured like attributions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from plotly.colors import sample_colorscale

from workbench.explain.replaced_tokens import replaced_tokens
from workbench.figures import plot
from workbench.figures._style import DIVERGING
from workbench.figures.attribution import NOT_A_FEATURE
from workbench.models.objective_heads import make_head

TEXT = "the <b>cat</b> sat & ran"


@pytest.fixture(scope="module")
def result(make_tiny):
    bundle = make_tiny("tiny-bert", kind="encoder")
    bundle.heads = {"replaced-token": make_head("replaced-token", bundle.config.hidden_size)}
    return replaced_tokens(bundle, TEXT)


def test_the_bars_hold_the_probabilities_of_the_tokens_in_order(result):
    bars = plot(result).data[0]
    np.testing.assert_array_equal(bars.y, result.probabilities)
    assert list(bars.x) == list(range(len(result.tokens.text)))


def test_token_labels_are_escaped_so_markup_shows_as_itself(result):
    fig = plot(result)
    labels = list(fig.layout.xaxis.ticktext)
    assert "&lt;" in "".join(labels) and "<b>" not in "".join(labels)
    assert "<b>" not in fig.layout.title.text


def test_likely_replaced_tokens_are_red_unlikely_blue_and_special_ones_grey(result):
    chosen = np.linspace(0.05, 0.95, len(result.tokens.text))
    bars = plot(dataclasses.replace(result, probabilities=chosen)).data[0]
    special = result.tokens.special
    assert special[0] and bars.marker.color[0] == NOT_A_FEATURE
    last_real = max(i for i, s in enumerate(special) if not s)
    assert bars.marker.color[last_real] == sample_colorscale(DIVERGING, [float(chosen[last_real])])[0]
    assert bars.marker.color[1] == sample_colorscale(DIVERGING, [float(chosen[1])])[0]
    assert bars.marker.color[1] != bars.marker.color[last_real]
