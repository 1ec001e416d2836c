"""Attribution figures on a hand-made classifier that reads only "cat": bars, deletion curves over the random
floor, the method × token map and the agreement matrix hold the results' numbers; the floor is what chance gives."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tests.one_token import one_token_classifier, positive_probability
from workbench.errors import AttributionError
from workbench.explain import agreement, attribute
from workbench.explain.faithfulness import random_ranking_floor
from workbench.figures import FigureError, plot

TEXT = "the <b>dog</b> sat & the cat ran"


@pytest.fixture(scope="module")
def bundle(make_tiny):
    return one_token_classifier(make_tiny)


def _p(cats: int) -> float:
    return positive_probability(cats)


@pytest.fixture(scope="module")
def occlusion(bundle):
    return attribute(bundle, TEXT, "positive", method="occlusion")


@pytest.fixture(scope="module")
def gradients(bundle):
    return attribute(bundle, TEXT, "positive", method="gradient_x_input")


@pytest.fixture(scope="module")
def floor(bundle, occlusion):
    return random_ranking_floor(bundle, occlusion, rankings=200)


def test_token_bars_hold_the_scores_with_colour_by_sign_and_grey_non_features(occlusion):
    signed = copy.copy(occlusion)
    signed.scores = occlusion.scores.copy()
    dog = occlusion.tokens.text.index("dog")
    signed.scores[dog] = -0.5 * signed.scores.max()  # one token that lowers the target
    fig = plot(signed)
    bars = fig.data[0]
    np.testing.assert_array_equal(bars.y, signed.scores)
    assert list(bars.x) == list(range(signed.num_tokens))
    colours = list(bars.marker.color)
    cat = occlusion.tokens.text.index("cat")
    red, _, blue = (int(v) for v in colours[cat][4:-1].split(","))
    assert red > blue  # raises p: red
    red, _, blue = (int(v) for v in colours[dog][4:-1].split(","))
    assert blue > red  # lowers p: blue
    for i, feature in enumerate(signed.features):
        assert (colours[i] == "#c8c8c8") == (not feature)  # [CLS], [SEP]: grey


def test_token_bars_show_tokens_escaped_and_a_title_with_method_target_and_fx(occlusion):
    fig = plot(occlusion)
    ticks = list(fig.layout.xaxis.ticktext)
    assert "&lt;" in ticks and "&amp;" in ticks and not any("<" in t for t in ticks)
    assert fig.data[0].customdata[ticks.index("&lt;")][0] == "&lt;"
    title = fig.layout.title.text
    assert title.startswith("occlusion on one-token: target 'positive', f(x) = ")
    assert f"{occlusion.score:.3f}" in title and "&lt;b&gt;dog&lt;/b&gt;" in title


def test_deletion_curves_of_several_methods_and_the_floor_share_one_figure(occlusion, gradients, floor):
    fig = plot([occlusion, gradients], floor=floor)
    assert [d.name.split(" ")[0] for d in fig.data] == ["occlusion", "gradient_x_input", "random"]
    for trace, result in zip(fig.data, [occlusion, gradients], strict=False):
        np.testing.assert_array_equal(trace.x, result.faithfulness.deletion_removed)
        np.testing.assert_array_equal(trace.y, result.faithfulness.deletion_curve)
    np.testing.assert_array_equal(fig.data[2].y, floor.deletion_curve)
    np.testing.assert_allclose(
        fig.data[0].customdata, occlusion.faithfulness.deletion_removed / occlusion.features.sum()
    )
    assert f"{occlusion.faithfulness.deletion_auc:.3f}" in fig.data[0].name


def test_the_random_floor_is_what_chance_gives_and_the_right_ranking_beats_it(occlusion, floor):
    removed = floor.deletion_removed
    share = removed / occlusion.features.sum()
    # "cat" is among k random tokens of m with probability k/m: p falls from p(1 cat) to p(0 cats) = 0.5.
    np.testing.assert_allclose(floor.deletion_curve, (1 - share) * _p(1) + share * 0.5, atol=0.05)
    assert floor.deletion_curve[0] == pytest.approx(_p(1)) and floor.deletion_curve[-1] == pytest.approx(0.5)
    assert occlusion.faithfulness.deletion_auc < floor.deletion_auc - 0.1
    assert occlusion.faithfulness.comprehensiveness > floor.comprehensiveness


def test_one_random_ranking_is_scored_like_any_other_ranking(bundle, occlusion):
    from workbench.explain.attribution.objective import make_objective
    from workbench.explain.faithfulness import score_ranking

    one = random_ranking_floor(bundle, occlusion, rankings=1, seed=3)
    order = np.random.default_rng(3).permutation(occlusion.num_tokens)
    same = score_ranking(make_objective(bundle, TEXT, "positive"), order)
    np.testing.assert_array_equal(one.deletion_curve, same.deletion_curve)
    assert one.comprehensiveness == same.comprehensiveness


@pytest.mark.parametrize("rankings", [0, -2, 2.5, True])
def test_a_floor_of_no_rankings_is_refused(bundle, occlusion, rankings):
    with pytest.raises(AttributionError, match=r"rankings must be a positive whole number, such as 8; got"):
        random_ranking_floor(bundle, occlusion, rankings=rankings)


def test_the_method_by_token_map_scales_each_method_and_blanks_non_features(occlusion, gradients):
    fig = plot([occlusion, gradients], show="tokens")
    heat = fig.data[0]
    features = occlusion.features
    for row, result in enumerate([occlusion, gradients]):
        largest = np.abs(result.scores[features]).max()
        np.testing.assert_allclose(heat.z[row][features], result.scores[features] / largest, rtol=1e-6)
        assert np.isnan(np.asarray(heat.z[row], dtype=float)[~features]).all()
        np.testing.assert_allclose(heat.customdata[row, :, 2].astype(float), result.scores, rtol=1e-6)
    assert list(fig.layout.yaxis.ticktext) == ["occlusion", "gradient_x_input"]
    assert "&lt;" in list(fig.layout.xaxis.ticktext)


def test_the_deletion_curve_of_faithfulness_scores_alone(occlusion, floor):
    fig = plot(occlusion.faithfulness, floor=floor)
    np.testing.assert_array_equal(fig.data[0].y, occlusion.faithfulness.deletion_curve)
    np.testing.assert_array_equal(fig.data[1].y, floor.deletion_curve)
    assert f"comprehensiveness {occlusion.faithfulness.comprehensiveness:.3f}" in fig.layout.title.text


def test_the_agreement_matrix_holds_the_correlations_with_names_escaped(occlusion, gradients):
    mine = copy.copy(occlusion)
    mine.scores = -occlusion.scores
    mine.method = "<i>mine</i>"
    agree = agreement([occlusion, gradients, mine])
    fig = plot(agree)
    np.testing.assert_array_equal(fig.data[0].z, agree.spearman)
    assert fig.data[0].texttemplate == "%{z:.2f}"
    assert list(fig.layout.xaxis.ticktext) == ["occlusion", "gradient_x_input", "&lt;i&gt;mine&lt;/i&gt;"]
    np.testing.assert_array_equal(plot(agree, statistic="kendall").data[0].z, agree.kendall)
    with pytest.raises(FigureError, match="statistic must be 'spearman' or 'kendall'; got 'pearson'"):
        plot(agree, statistic="pearson")


def test_lists_that_cannot_share_a_figure_are_refused_with_a_sentence(bundle, occlusion, gradients, floor):
    other = attribute(bundle, "the cat sat", "positive", method="occlusion")
    bare = attribute(bundle, TEXT, "positive", method="occlusion", faithfulness=False)
    with pytest.raises(FigureError, match=r"These 2 results explain 2 different inputs; .* plot each text's results"):
        plot([occlusion, other])
    with pytest.raises(FigureError, match=r"The occlusion result has no faithfulness scores .* faithfulness=True"):
        plot([bare, gradients])
    with pytest.raises(FigureError, match=r"The floor was computed on another input"):
        plot([other], floor=floor)
    with pytest.raises(FigureError, match=r"floor must be the FaithfulnessScores of random_ranking_floor"):
        plot([occlusion], floor=[0.5, 0.4])
    with pytest.raises(FigureError, match=r"show must be 'deletion' or 'tokens'; got 'bars'"):
        plot([occlusion], show="bars")
    assert len(plot([bare, gradients], show="tokens").data) == 1  # the token map needs no faithfulness


def test_attribution_figures_serialise_small(occlusion, gradients, floor, tmp_path):
    fig = plot([occlusion, gradients], floor=floor)
    assert len(fig.to_json()) < 20_000
    plot(occlusion).write_html(tmp_path / "bars.html", include_plotlyjs=False)
    page = (tmp_path / "bars.html").read_text()
    assert "&lt;b&gt;dog&lt;" in page and "<b>dog" not in page
