"""Token attributions on tiny models: one table of methods x models, completeness, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from workbench.explain import METHODS, AttributionError, AttributionResult, attribute, attribute_many
from workbench.explain.attribution.fast_encoder import FastEncoder
from workbench.models import ModelBundle

CASES = {  # model -> (text, target)
    "classifier": ("the cat sat on the mat", "positive"),
    "masked-lm": ("the cat sat on the [MASK]", None),
    "causal-lm": ("the cat sat on the", None),
}


@pytest.fixture(scope="module")
def bundles(make_tiny):
    torch.manual_seed(0)
    return {
        "classifier": make_tiny("tiny-bert", kind="classifier", label_names=["negative", "positive"]),
        "masked-lm": make_tiny("tiny-bert"),
        "causal-lm": make_tiny("tiny-gpt"),
    }


@pytest.mark.parametrize("kind", list(CASES))
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_scores_every_token_of_every_kind_of_model(bundles, kind, method):
    text, target = CASES[kind]
    result = (
        attribute(bundles[kind], text, target, method=method, max_evals=60)
        if method == "shap"
        else attribute(bundles[kind], text, target, method=method)
    )
    assert isinstance(result, AttributionResult)
    n = len(bundles[kind].tokenizer(text.replace("[MASK]", bundles[kind].tokenizer.mask_token or ""))["input_ids"])
    assert result.scores.shape == (n,) and np.isfinite(result.scores).all()
    assert (result.scores[~result.features] == 0).all()
    assert result.features.any() and not result.features[np.asarray(result.tokens.special)].any()
    assert 0 < result.score < 1 and result.route and result.method == method
    f = result.faithfulness
    assert f is not None and np.isfinite([f.comprehensiveness, f.sufficiency, f.deletion_auc]).all()
    assert f.deletion_curve[0] == pytest.approx(result.score, abs=1e-5)  # nothing removed yet
    json.dumps(result.to_dict())


def test_a_masked_lm_explains_the_mask_and_does_not_score_it(bundles):
    result = attribute(bundles["masked-lm"], "the cat sat on the [MASK]", method="occlusion")
    assert result.position is not None and not result.features[result.position]
    assert result.tokens.ids[result.position] == bundles["masked-lm"].tokenizer.mask_token_id


@pytest.mark.parametrize("kind", ["classifier", "masked-lm", "causal-lm"])
def test_integrated_gradients_sum_to_the_change_from_the_baseline(bundles, kind):
    text, target = CASES[kind]
    result = attribute(bundles[kind], text, target, method="integrated_gradients", steps=16)
    difference = result.extra["f_x"] - result.extra["f_baseline"]
    assert abs(result.scores.sum() - difference) <= 0.01 * abs(difference) + 1e-7
    assert result.extra["f_x"] == pytest.approx(result.score, abs=1e-5)
    if result.removal == "mask":  # the embedding baseline is the same input as every feature masked
        assert result.extra["f_baseline"] == pytest.approx(result.baseline_score, abs=1e-5)


def test_integrated_gradients_add_steps_until_complete(bundles, monkeypatch):
    from workbench.explain.attribution import gradients

    monkeypatch.setattr(gradients, "TOLERANCE", 1e-9)
    result = attribute(bundles["classifier"], "the cat sat", method="integrated_gradients", steps=2)
    assert result.extra["steps"] > 2


def test_shap_values_with_one_seed_are_one_answer_and_leave_numpys_random_state_alone(bundles):
    np.random.seed(123)
    expected_next = np.random.rand()
    np.random.seed(123)
    a = attribute(bundles["classifier"], "the cat sat on the mat", method="shap", max_evals=40, seed=5)
    assert np.random.rand() == expected_next
    b = attribute(bundles["classifier"], "the cat sat on the mat", method="shap", max_evals=40, seed=5)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_shap_values_and_base_add_up_to_the_prediction(bundles):
    result = attribute(bundles["classifier"], "the dog ran in the park", method="shap", max_evals=500)
    assert result.extra["base_value"] + result.scores.sum() == pytest.approx(result.score, abs=1e-5)


def test_the_default_target_is_the_models_own_prediction(bundles):
    bundle = bundles["classifier"]
    enc = bundle.tokenizer("the cat sat on the mat", return_tensors="pt")
    with torch.no_grad():
        predicted = int(bundle.model.eval()(**enc).logits.argmax())
    result = attribute(bundle, "the cat sat on the mat", method="gradient_x_input")
    assert result.target == predicted and result.target_name == bundle.label_names[predicted]
    by_index = attribute(bundle, "the cat sat on the mat", 1, method="occlusion")
    by_name = attribute(bundle, "the cat sat on the mat", "positive", method="occlusion")
    np.testing.assert_allclose(by_index.scores, by_name.scores)


def test_a_language_model_target_can_be_a_token_string_or_id(bundles):
    bundle = bundles["causal-lm"]
    token_id = bundle.tokenizer(" mat", add_special_tokens=False)["input_ids"]
    assert len(token_id) == 1
    by_string = attribute(bundle, "the cat sat on the", " mat", method="occlusion")
    by_id = attribute(bundle, "the cat sat on the", token_id[0], method="occlusion")
    assert by_string.target == by_id.target == token_id[0]
    np.testing.assert_allclose(by_string.scores, by_id.scores)


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda b: attribute(b["classifier"], "", method="occlusion"), "empty"),
        (lambda b: attribute(b["classifier"], None, method="occlusion"), "must be a string"),
        (lambda b: attribute(b["classifier"], "the cat", 7, method="occlusion"), "out of range"),
        (lambda b: attribute(b["classifier"], "the cat", "neutral", method="occlusion"), "not one of"),
        (lambda b: attribute(b["classifier"], "the cat", method="lime"), "Unknown attribution method"),
        (lambda b: attribute(b["classifier"], "the cat", method="occlusion", steps=3), "does not take steps"),
        (lambda b: attribute(b["classifier"], "the cat", method="integrated_gradients", steps=0), "positive integer"),
        (lambda b: attribute(b["classifier"], "the cat", method="shap", max_evals=1), "at least 3"),
        (lambda b: attribute(b["masked-lm"], "the cat sat", method="occlusion"), "has no mask"),
        (lambda b: attribute(b["causal-lm"], "the cat", "the quick brown fox", method="occlusion"), "tokens"),
        (lambda b: attribute(b["causal-lm"], "the cat", 10**9, method="occlusion"), "out of range"),
        (lambda b: attribute(b["classifier"], "the cat " * 100, method="occlusion"), "shorten it"),
        (lambda b: attribute_many(b["classifier"], "the cat", method="occlusion"), "list of texts"),
    ],
)
def test_bad_input_gets_one_sentence(bundles, call, words):
    with pytest.raises(AttributionError, match=words):
        call(bundles)


def test_an_encoder_without_a_head_is_refused_with_what_to_do(make_tiny):
    encoder = make_tiny("tiny-bert", kind="encoder")
    with pytest.raises(AttributionError, match="kind='classifier'"):
        attribute(encoder, "the cat", method="occlusion")


def test_attribute_many_gives_a_result_per_text_and_method_and_passes_each_its_own_options(bundles):
    results = attribute_many(
        bundles["classifier"],
        ["the cat sat", "the dog ran"],
        "positive",
        method=["shap", "integrated_gradients", "occlusion"],
        max_evals=30,
        steps=8,
        progress=False,
    )
    assert [(r.text, r.method) for r in results] == [
        (t, m) for t in ("the cat sat", "the dog ran") for m in ("shap", "integrated_gradients", "occlusion")
    ]
    assert results[0].extra["max_evals"] == 30 and results[1].extra["steps"] >= 8


def test_a_model_in_training_mode_is_explained_in_eval_mode_and_left_training(bundles):
    bundle = bundles["classifier"]
    bundle.model.train()
    a = attribute(bundle, "the cat sat on the mat", "positive", method="gradient_x_input")
    assert bundle.model.training
    bundle.model.eval()
    b = attribute(bundle, "the cat sat on the mat", "positive", method="gradient_x_input")
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-7)


def test_a_tiny_memory_budget_scores_one_row_at_a_time_with_the_same_values(bundles):
    a = attribute(bundles["causal-lm"], "the cat sat on the mat", method="occlusion", memory_mb=1)
    b = attribute(bundles["causal-lm"], "the cat sat on the mat", method="occlusion")
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)


def test_to_shap_gives_an_explanation_shaps_text_plot_draws(bundles):
    import shap

    result = attribute(bundles["classifier"], "the cat <b>sat</b>", method="occlusion")
    explanation = result.to_shap()
    assert isinstance(explanation, shap.Explanation)
    np.testing.assert_allclose(explanation.values, result.scores)
    assert "".join(explanation.data) == "the cat <b>sat</b>"
    page = shap.plots.text(explanation, display=False)
    assert "&lt;b&gt;" in page or "&lt;" in page


# --- the fast encoder ------------------------------------------------------------------------


def _tiny_bert_classifier():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=120,
        hidden_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=96,
        max_position_embeddings=64,
        num_labels=3,
    )
    return BertForSequenceClassification(config).eval()


def _tiny_bert_bundle(tokenizer):
    """A random BERT classifier (labels a, b, c) on the tiny tokenizer: it takes the fast route."""
    model = _tiny_bert_classifier()
    model.resize_token_embeddings(len(tokenizer))
    model.config.id2label = {0: "a", 1: "b", 2: "c"}
    model.config.label2id = {"a": 0, "b": 1, "c": 2}
    return ModelBundle(model.eval(), tokenizer, "classifier", "tiny-bert-classifier", "test")


def test_the_fast_encoder_gives_the_models_own_probabilities_with_padding():
    model = _tiny_bert_classifier()
    fast = FastEncoder(model)
    ids = torch.randint(5, 120, (4, 17))
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0
    mask[3, 5:] = 0
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask).logits.softmax(-1)
    torch.testing.assert_close(fast(ids, mask), reference, atol=1e-6, rtol=1e-5)


def test_only_bert_classifiers_take_the_fast_route(bundles):
    assert FastEncoder.supports(_tiny_bert_classifier())
    assert not FastEncoder.supports(bundles["classifier"].model)  # ModernBERT
    with pytest.raises(TypeError):
        FastEncoder(bundles["causal-lm"].model)


def test_the_fast_route_and_the_models_forward_give_the_same_shap_values(bundles, monkeypatch):
    from workbench.explain.attribution import fast_encoder

    bundle = _tiny_bert_bundle(bundles["classifier"].tokenizer)
    fast = attribute(bundle, "the cat sat on the mat", "b", method="shap", max_evals=80)
    assert "fast BERT encoder" in fast.route
    monkeypatch.setattr(fast_encoder.FastEncoder, "supports", staticmethod(lambda model: False))
    slow = attribute(bundle, "the cat sat on the mat", "b", method="shap", max_evals=80)
    assert "model's own forward" in slow.route
    np.testing.assert_allclose(fast.scores, slow.scores, atol=1e-5)


def test_the_packed_copy_of_a_model_goes_when_the_model_goes(bundles):
    import gc
    import weakref

    from workbench.explain.attribution.objective import _FAST_CACHE

    bundle = _tiny_bert_bundle(bundles["classifier"].tokenizer)
    model = bundle.model
    before = len(_FAST_CACHE)
    attribute(bundle, "the cat sat", "b", method="occlusion")
    assert model in _FAST_CACHE and len(_FAST_CACHE) == before + 1
    alive = weakref.ref(model)
    del bundle, model
    gc.collect()
    assert alive() is None and len(_FAST_CACHE) == before
