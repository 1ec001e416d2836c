"""Attributions on the real models: our SHAP route against shap's own, and gradients on SmolLM2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.explain import attribute
from workbench.explain.attribution.fast_encoder import FastEncoder

pytestmark = [pytest.mark.assets, pytest.mark.timeout(600)]

TEXTS = [
    "A gripping, funny and quietly heartbreaking film that never once drags.",
    "The plot is a mess, the jokes fall flat, and the two leads share no chemistry at all.",
]


@pytest.fixture(scope="module")
def classifier():
    from workbench.recipes import movie_sentiment_classifier

    bundle = movie_sentiment_classifier(60, progress=False)
    bundle.model.eval()
    return bundle


def test_our_shap_values_equal_shaps_pipeline_route_on_a_fine_tuned_minilm(classifier):
    # One sentence: shap's own route runs in plain Python here (numba off in make test) and takes a minute or
    # more a sentence; the fast encoder's equality with the model on both texts is checked below.
    text = TEXTS[0]
    import shap
    import transformers

    pipe = transformers.pipeline(
        "text-classification", model=classifier.model, tokenizer=classifier.tokenizer, top_k=None, device=-1
    )
    explainer = shap.Explainer(pipe, seed=0)
    np.random.seed(0)  # the Partition explainer breaks ties with numpy's global random numbers
    theirs = explainer([text], max_evals=300, silent=True).values[0]  # (tokens, labels)
    ours = attribute(classifier, text, method="shap", max_evals=300, seed=0, faithfulness=False)
    assert "fast BERT encoder" in ours.route
    reference = theirs[:, ours.target]
    assert ours.scores.shape == reference.shape
    assert np.corrcoef(reference, ours.scores.astype(np.float64))[0, 1] >= 0.99


def test_the_fast_encoder_gives_the_fine_tuned_minilms_own_probabilities(classifier):
    enc = classifier.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        reference = classifier.model(**enc).logits.softmax(-1)
    fast = FastEncoder(classifier.model)(enc["input_ids"], enc["attention_mask"])
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-4)


def test_the_fine_tuned_classifier_is_explained_by_its_sentiment_words(classifier):
    result = attribute(classifier, TEXTS[1], "negative", method="occlusion")
    top = {t.lower() for t, _ in result.top(4)}
    assert top & {"mess", "flat", "no", "fall"}
    assert result.faithfulness.comprehensiveness > 0


def test_smollm2_next_token_integrated_gradients_are_complete():
    from workbench.models import load_model

    bundle = load_model("smollm2-135m")
    result = attribute(bundle, "The capital of France is", " Paris", method="integrated_gradients")
    assert result.target_name == " Paris" and result.removal == "delete"
    difference = result.extra["f_x"] - result.extra["f_baseline"]
    assert abs(result.scores.sum() - difference) <= 0.01 * abs(difference) + 1e-6
    assert result.top(1)[0][0].strip() in {"capital", "France"}  # a content word, not "The", "of" or "is"
