"""Faithfulness scores on a hand-made classifier whose right answer is known: it looks only at "cat"."""

from __future__ import annotations

import numpy as np
import pytest

from tests.one_token import one_token_classifier, positive_probability
from workbench.explain import agreement, attribute, faithfulness
from workbench.explain.attribution.objective import make_objective
from workbench.explain.faithfulness import FRACTIONS, score_ranking

TEXT = "the dog sat on the mat and the cat ran to the park"


@pytest.fixture(scope="module")
def bundle(make_tiny):
    return one_token_classifier(make_tiny)


def _p(cats: int) -> float:
    return positive_probability(cats)


@pytest.mark.parametrize("method", ["shap", "integrated_gradients", "occlusion", "gradient_x_input"])
def test_every_method_finds_the_one_token_the_model_reads(bundle, method):
    result = attribute(bundle, TEXT, "positive", method=method)
    assert result.top(1)[0][0].strip() == "cat"
    others = np.delete(result.scores, np.flatnonzero(np.asarray(result.tokens.text) == "cat"))
    assert np.abs(others).max() < 1e-6


def test_the_right_ranking_scores_what_the_definitions_say(bundle):
    result = attribute(bundle, TEXT, "positive", method="occlusion")
    f = result.faithfulness
    # Removing any top share removes "cat" (ranked first): p falls to p(0 cats) = 0.5.
    assert f.comprehensiveness == pytest.approx(_p(1) - 0.5, abs=1e-6)
    # Keeping the top share keeps "cat": nothing changes.
    assert f.sufficiency == pytest.approx(0.0, abs=1e-6)
    assert set(f.by_fraction) == set(FRACTIONS)
    assert f.deletion_curve[0] == pytest.approx(_p(1)) and f.deletion_curve[1:] == pytest.approx(0.5)
    assert f.deletion_removed[0] == 0 and f.deletion_removed[-1] == result.features.sum()


def test_a_ranking_that_puts_the_token_last_scores_worse_on_every_measure(bundle):
    objective = make_objective(bundle, TEXT, "positive")
    right = attribute(bundle, TEXT, "positive", method="occlusion")
    wrong = score_ranking(objective, -right.scores)  # "cat" ranked last
    good = right.faithfulness
    assert wrong.comprehensiveness < good.comprehensiveness
    assert wrong.sufficiency > good.sufficiency
    assert wrong.deletion_auc > good.deletion_auc
    # Removing half the tokens from the wrong end never reaches "cat": no drop at all.
    assert wrong.by_fraction[0.5]["comprehensiveness"] == pytest.approx(0.0, abs=1e-6)


def test_faithfulness_recomputed_from_a_result_equals_the_one_it_carries(bundle):
    result = attribute(bundle, TEXT, "positive", method="integrated_gradients")
    again = faithfulness(bundle, result)
    assert again.comprehensiveness == pytest.approx(result.faithfulness.comprehensiveness)
    np.testing.assert_allclose(again.deletion_curve, result.faithfulness.deletion_curve)


def test_methods_that_agree_correlate_and_one_that_reverses_anticorrelates(bundle):
    a = attribute(bundle, "the dog and the cat", "positive", method="occlusion")
    b = attribute(bundle, "the dog and the cat", "positive", method="shap")
    flipped = attribute(bundle, "the dog and the cat", "positive", method="occlusion")
    flipped.scores = -flipped.scores
    flipped.method = "reversed"
    agree = agreement([a, b, flipped])
    assert agree.methods == ["occlusion", "shap", "reversed"]
    assert agree.spearman[0, 1] == pytest.approx(1.0) and agree.kendall[0, 1] == pytest.approx(1.0)
    assert agree.spearman[0, 2] == pytest.approx(-1.0)
    np.testing.assert_allclose(np.diag(agree.spearman), 1.0)


def test_agreement_refuses_results_of_different_inputs(bundle):
    a = attribute(bundle, "the dog and the cat", "positive", method="occlusion")
    b = attribute(bundle, "the cat and the dog", "positive", method="occlusion")
    with pytest.raises(ValueError, match="same model, text and target"):
        agreement([a, b])
    with pytest.raises(ValueError, match="at least two"):
        agreement([a])
