"""Figures of what a model predicts: they hold the results' numbers, text stays text, a bad option gets a sentence."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from workbench.explain.generate import generate
from workbench.explain.lens import logit_lens
from workbench.explain.probe import fill_mask
from workbench.explain.steering import steering_vector
from workbench.figures import FigureError, plot
from workbench.figures._style import token_labels
from workbench.figures.lens import cell_token
from workbench.training.tuned_lens import TunedLens

MARKUP_TEXT = "The <b>cat</b> sat on the"


@pytest.fixture(scope="module")
def lens(tiny_gpt):
    return logit_lens(tiny_gpt, MARKUP_TEXT, top_k=3)


@pytest.fixture(scope="module")
def tuned(tiny_gpt):
    """The same text through a tuned lens with random translators: numbers unlike the logit lens's."""
    translators = TunedLens.for_model(tiny_gpt)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        translators.weight.copy_(torch.randn(translators.weight.shape, generator=g) * 0.2)
        translators.bias.copy_(torch.randn(translators.bias.shape, generator=g))
    return logit_lens(tiny_gpt, MARKUP_TEXT, top_k=3, lens=translators)


def test_the_lens_map_colours_each_cell_by_its_top_tokens_probability_and_writes_the_token(lens):
    fig = plot(lens)
    heat = fig.data[0]
    np.testing.assert_allclose(heat.z, lens.top_probs[:, :, 0], rtol=1e-6)
    rows, columns = lens.top_probs.shape[:2]
    assert [list(row) for row in heat.text] == [
        [cell_token(lens.top_tokens[r][c][0]) for c in range(columns)] for r in range(rows)
    ]
    assert list(fig.layout.yaxis.ticktext) == ["embeddings", "layer 1", "layer 2"]
    assert list(fig.layout.yaxis.tickvals) == [0, 1, 2]  # row 0, the embeddings, at the bottom
    assert list(fig.layout.xaxis.ticktext) == token_labels([lens.tokens.text[p] for p in lens.positions])
    assert fig.layout.coloraxis.cmin == 0 and fig.layout.coloraxis.cmax == 1


def test_colouring_by_the_target_draws_its_probability_and_hover_gives_its_rank(lens):
    fig = plot(lens, color="target")
    np.testing.assert_allclose(fig.data[0].z, lens.target_probs, rtol=1e-6)
    r, c = 1, 3
    assert fig.data[0].customdata[r][c][2] == (
        f"p({lens.target_name!r}) = {lens.target_probs[r, c]:.4f}, rank {int(lens.target_ranks[r, c]) + 1}"
    )
    assert f"position {lens.positions[c]}" in fig.data[0].customdata[r][c][0]


def test_hover_lists_k_top_tokens_with_their_probabilities(lens):
    cell = plot(lens, k=2).data[0].customdata[2][4][1]
    lines = cell.split("<br>")
    assert len(lines) == 2
    assert lines[1] == f"  {lens.top_tokens[2][4][1]!r} {lens.top_probs[2, 4, 1]:.3f}".replace("<", "&lt;").replace(
        ">", "&gt;"
    )


def test_markup_in_the_text_and_in_top_tokens_shows_as_text(lens):
    marked = copy.deepcopy(lens)
    marked.top_tokens[0][0][0] = "<b>x</b>"
    marked.top_tokens[1][0][0] = "abcdefghijkl"
    fig = plot(marked)
    assert "&lt;" in fig.layout.xaxis.ticktext and not any("<" in t for t in fig.layout.xaxis.ticktext)
    assert "&lt;b&gt;cat&lt;/b&gt;" in fig.layout.title.text
    assert fig.data[0].text[0][0] == "&lt;b&gt;x&lt;/b&gt;"
    assert fig.data[0].text[1][0] == "abcdefg…"  # cut for the cell; hover gives it whole
    assert "'&lt;b&gt;x&lt;/b&gt;'" in fig.data[0].customdata[0][0][1]
    fig.to_json()  # and it serialises outside Jupyter


def test_a_tuned_lens_is_drawn_beside_the_logit_lens_on_one_colour_scale(lens, tuned):
    fig = plot([lens, tuned])
    assert [a.text for a in fig.layout.annotations] == ["logit lens", "tuned lens (untrained)"]
    np.testing.assert_allclose(fig.data[0].z, lens.top_probs[:, :, 0], rtol=1e-6)
    np.testing.assert_allclose(fig.data[1].z, tuned.top_probs[:, :, 0], rtol=1e-6)
    assert not np.allclose(fig.data[0].z, fig.data[1].z)
    assert fig.data[0].coloraxis == fig.data[1].coloraxis == "coloraxis"


def test_lenses_of_different_texts_are_not_drawn_side_by_side(tiny_gpt, lens):
    other = logit_lens(tiny_gpt, "A dog ran", top_k=3)
    with pytest.raises(FigureError, match="must read one model on one text at the same positions"):
        plot([lens, other])


@pytest.mark.parametrize(
    ("options", "sentence"),
    [
        ({"color": "entropy"}, "color='entropy' is not a lens colouring: use 'top'"),
        ({"k": 4}, "k=4 is out of range: this result holds 3 top tokens, so give a whole number from 1 to 3"),
        ({"k": 0}, "k=0 is out of range"),
    ],
)
def test_a_bad_lens_option_gets_one_sentence(lens, options, sentence):
    with pytest.raises(FigureError, match=sentence):
        plot(lens, **options)


def test_fill_mask_draws_each_masks_candidates_and_the_joint_words_as_bars(tiny_bert):
    result = fill_mask(tiny_bert, "The cat [MASK] [MASK] the mat.", top_k=4)
    fig = plot(result)
    assert len(fig.data) == 3  # two masks, and the word they make together
    for bars, prediction in zip(fig.data[:2], result.predictions, strict=True):
        np.testing.assert_allclose(bars.x, prediction.probabilities, rtol=1e-6)
    np.testing.assert_allclose(fig.data[2].x, [p for _, p in result.words()[0]["candidates"]], rtol=1e-6)
    assert list(fig.layout.yaxis.ticktext) == token_labels(result.predictions[0].tokens)
    assert fig.layout.yaxis.autorange == "reversed"  # the likeliest on top
    np.testing.assert_allclose(plot(result, k=2).data[0].x, result.predictions[0].probabilities[:2], rtol=1e-6)
    marked = copy.deepcopy(result)
    marked.predictions[0].tokens[0] = "<b>"
    assert plot(marked).layout.yaxis.ticktext[0] == "&lt;b&gt;"
    with pytest.raises(FigureError, match="k=5 is out of range: this result holds 4 candidates"):
        plot(result, k=5)


def test_a_generation_draws_each_tokens_probability_and_a_steered_one_beside_the_plain(tiny_gpt):
    vector = steering_vector(tiny_gpt, ["I love this cat"], ["I hate this dog"], layer=0)
    out = generate(tiny_gpt, "The cat", max_new_tokens=4, seed=0, steer=(vector, 8.0))
    assert out.plain is not None
    fig = plot(out)
    np.testing.assert_allclose(fig.data[0].y, [s.probability for s in out.steps], rtol=1e-6)
    np.testing.assert_allclose(fig.data[1].y, [s.probability for s in out.plain.steps], rtol=1e-6)
    assert list(fig.layout.xaxis.ticktext) == token_labels([s.token for s in out.steps])
    assert fig.layout.annotations[0].text.startswith("steered (layer 0, coefficient +8)")
    assert plot(out.plain, k=1).data[0].customdata[0][1].count("<br>") == 0
    with pytest.raises(FigureError, match="k=6 is out of range: this result holds 5 alternatives per step"):
        plot(out, k=6)
