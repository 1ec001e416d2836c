"""Sentence-pair figures hold the result's numbers: one pair's tokens by segment and its P(as written), or one bar
per pair; every token and text is shown as itself (escaped), never read as markup."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.explain.sentence_pair import SentencePairResult
from workbench.figures import FigureError, plot


def _result(first="the <b>cat</b> sat", second="a dog & a mat", probability=0.8, task="next-sentence"):
    tokens = ["[CLS]", "the", "<b>", "cat", "</b>", "sat", "[SEP]", "a", "dog", "&", "a", "mat", "[SEP]"]
    segments = [0] * 7 + [1] * 6
    special = [t in ("[CLS]", "[SEP]") for t in tokens]
    return SentencePairResult(task, "tiny-bert", first, second, probability, tokens, segments, special)


def test_one_pair_shows_its_tokens_by_segment_and_its_probability():
    result = _result()
    fig = plot(result)
    strip, bar = fig.data
    np.testing.assert_array_equal(np.asarray(strip.z)[0], result.segments)
    assert list(strip.x) == list(range(len(result.tokens)))
    assert list(bar.x) == [result.probability]
    assert list(bar.y) == ["P(is next)"]
    assert "P(is next) = 0.800 (is next)" in fig.layout.title.text


def test_one_pair_figure_escapes_every_token():
    fig = plot(_result())
    strip = fig.data[0]
    shown = list(strip.text[0])
    assert shown[2] == "&lt;b&gt;" and shown[4] == "&lt;/b&gt;" and shown[9] == "&amp;"
    assert list(fig.layout.xaxis.ticktext) == shown


def test_a_list_draws_one_bar_per_pair_with_both_texts_escaped():
    results = [_result(probability=0.9), _result(first="To be", second="<i>or not</i>", probability=0.2)]
    fig = plot(results)
    bars = fig.data[0]
    np.testing.assert_allclose(bars.y, [0.9, 0.2])
    assert list(bars.x) == [0, 1]
    assert [list(c) for c in bars.customdata] == [
        ["the &lt;b&gt;cat&lt;/b&gt; sat", "a dog &amp; a mat"],
        ["To be", "&lt;i&gt;or not&lt;/i&gt;"],
    ]
    assert fig.layout.yaxis.title.text == "P(is next)"
    assert list(fig.layout.yaxis.range) == [0, 1]


def test_sentence_order_results_name_their_own_reading():
    fig = plot(_result(task="sentence-order", probability=0.3))
    assert list(fig.data[1].y) == ["P(in order)"]
    assert "(swapped)" in fig.layout.title.text


def test_a_list_of_two_pair_tasks_is_refused():
    with pytest.raises(FigureError, match="next-sentence and sentence-order heads, whose probabilities mean"):
        plot([_result(), _result(task="sentence-order")])
