"""Attention figures: the head-statistics map and one head's map hold the result's numbers, the survey its means."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.explain import attention, attention_survey
from workbench.figures import FigureError, plot

TEXT = "the <b>cat</b> sat & ran"


@pytest.fixture(scope="module")
def result(tiny_bert):
    return attention(tiny_bert, TEXT)


def _survey(bundle):
    return attention_survey(bundle, ["The cat sat on the mat.", "To be, or not to be, that is the question."])


def test_the_statistics_map_holds_each_heads_statistic(result):
    for statistic, values in result.stats.items():
        fig = plot(result, statistic=statistic)
        heat = fig.data[0]
        np.testing.assert_array_equal(heat.z, values)
        assert heat.z.shape == (result.num_layers, result.num_heads)
        assert list(heat.x) == list(range(result.num_heads)) and list(heat.y) == list(range(result.num_layers))
    assert "entropy" in plot(result).layout.title.text and result.model in plot(result).layout.title.text


def test_the_title_shows_the_text_escaped(result):
    title = plot(result).layout.title.text
    assert "&lt;b&gt;cat&lt;/b&gt; sat &amp; ran" in title and "<b>" not in title


def test_one_heads_map_holds_its_weights_with_tokens_on_both_axes(result):
    fig = plot(result, head=(1, 0))
    heat = fig.data[0]
    np.testing.assert_array_equal(heat.z, result.weights[1, 0])
    assert list(heat.x) == list(range(result.num_tokens))
    ticks = list(fig.layout.xaxis.ticktext)
    assert ticks == list(fig.layout.yaxis.ticktext) and len(ticks) == result.num_tokens
    assert "&lt;" in ticks and "&amp;" in ticks and "<" not in ticks
    # hover names the query (row) and key (column) tokens, escaped
    assert heat.customdata[2, 3][0] == "&lt;" and heat.customdata[2, 3][1] == ticks[3]
    assert "weight = %{z" in heat.hovertemplate


def test_a_window_shows_that_part_of_the_map_at_its_own_positions(result):
    fig = plot(result, head=(0, 1), window=(2, 6))
    np.testing.assert_array_equal(fig.data[0].z, result.weights[0, 1, 2:6, 2:6])
    assert list(fig.data[0].x) == [2, 3, 4, 5] and list(fig.layout.xaxis.tickvals) == [2, 3, 4, 5]
    assert f"tokens 2 to 5 of {result.num_tokens}" in fig.layout.title.text


def test_a_text_longer_than_one_map_shows_asks_for_a_window(result, monkeypatch):
    import workbench.figures.attention as figures

    monkeypatch.setattr(figures, "HEAD_TOKENS", 4)
    with pytest.raises(FigureError, match=r"more than one head's map shows \(4\); .* window=\(0, 4\)"):
        plot(result, head=(0, 0))
    assert plot(result, head=(0, 0), window=(1, 5)).data[0].z.shape == (4, 4)


@pytest.mark.parametrize(
    ("options", "sentence"),
    [
        ({"statistic": "loudness"}, r"no attention statistic 'loudness'; choose one of: entropy, mean_distance"),
        ({"head": (2, 0)}, r"head=\(2, 0\) is out of range: tiny-bert has layers 0 to 1 and heads 0 to 1\."),
        ({"head": (0, -1)}, r"out of range"),
        ({"head": 3}, r"head must be a pair \(layer, head\)"),
        ({"head": (0, 0), "window": (5, 2)}, r"window must be \(start, stop\) with 0 <= start < stop"),
        ({"window": (0, 2)}, r"give head=\(layer, head\) with it"),
    ],
)
def test_bad_options_are_refused_with_a_sentence_naming_what_is_valid(result, options, sentence):
    with pytest.raises(FigureError, match=sentence):
        plot(result, **options)


def test_the_survey_draws_each_share_per_layer_and_each_head_on_request(tiny_bert):
    survey = _survey(tiny_bert)
    fig = plot(survey)
    shares = [m for m in survey.measures if m != "entropy"]
    assert len(fig.data) == len(shares)
    for bars, name in zip(fig.data, shares, strict=True):
        np.testing.assert_allclose(bars.y, survey.by_layer(name))
        assert "%{y:.3f}" in bars.hovertemplate  # rounded on hover, not 0.17000000178813934
    assert "&lt;" not in fig.layout.title.text and "2 texts" in fig.layout.title.text
    heads = plot(survey, measure="previous")
    np.testing.assert_array_equal(heads.data[0].z, survey.measures["previous"])
    with pytest.raises(FigureError, match=r"no measure 'prev'; choose one of: cls, sep, punctuation"):
        plot(survey, measure="prev")


def test_attention_figures_save_outside_jupyter(result, tmp_path):
    fig = plot(result, head=(0, 0))
    fig.write_html(tmp_path / "head.html", include_plotlyjs=False)
    page = (tmp_path / "head.html").read_text()
    assert "&lt;b&gt;cat&lt;" in page and "<b>cat" not in page
    assert len(plot(result).to_json()) < 20_000
