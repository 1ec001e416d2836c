"""Attention results: weights as the model gives them, statistics, rollout and flow on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.explain.attention import AttentionResult, attention, attention_flow, attention_rollout, head_statistics
from workbench.explain.probe import ProbeError
from workbench.explain.tokens import TokenInfo


def _tokens(n, special=(), punctuation=()):
    return TokenInfo(
        [f"t{i}" for i in range(n)],
        [i in special for i in range(n)],
        [False] * n,
        [i in punctuation for i in range(n)],
        list(range(n)),
        [0] * n,
    )


@pytest.fixture(scope="module", params=["tiny-bert", "tiny-gpt"])
def bundle(request, make_tiny):
    return make_tiny(request.param)


def test_weights_equal_the_models_own_eager_attentions(bundle):
    text = "the cat sat on the mat"
    result = attention(bundle, text)
    enc = bundle.tokenizer(text, return_tensors="pt")
    bundle.model.set_attn_implementation("eager")
    with torch.no_grad():
        reference = torch.stack(bundle.model(**enc, output_attentions=True).attentions)[:, 0].numpy()
    bundle.model.set_attn_implementation("sdpa")
    np.testing.assert_allclose(result.weights, reference, atol=1e-6)
    np.testing.assert_allclose(result.weights.sum(-1), 1.0, atol=1e-5)
    assert result.weights.shape == (2, 2, enc["input_ids"].shape[1], enc["input_ids"].shape[1])


def test_attention_works_on_a_model_loaded_with_sdpa_and_leaves_it_so(bundle):
    bundle.model.set_attn_implementation("sdpa")
    attention(bundle, "the dog ran")
    assert bundle.model.config._attn_implementation == "sdpa"


def test_causal_models_attend_only_backwards(bundle):
    result = attention(bundle, "the quick brown fox jumps")
    if bundle.kind == "causal-lm":
        assert result.causal
        assert np.allclose(np.triu(result.weights, k=1), 0)
        assert np.allclose(result.stats["next"], 0)


def test_too_long_text_is_truncated_with_a_note(bundle):
    result = attention(bundle, "the cat sat " * 100)
    assert result.truncated and result.num_tokens == 64
    assert "only the first 64" in result.note


def test_empty_text_is_refused_with_a_sentence(bundle):
    with pytest.raises(ProbeError, match="empty"):
        attention(bundle, "   ")


def test_statistics_on_a_hand_made_previous_token_head():
    n = 5
    w = np.zeros((1, 2, n, n), dtype=np.float32)
    w[0, 0, 0, 0] = 1.0
    for q in range(1, n):
        w[0, 0, q, q - 1] = 1.0  # head 0: always the previous token
    w[0, 1] = 1.0 / n  # head 1: uniform
    stats = head_statistics(w, _tokens(n, special=(0,), punctuation=(4,)))
    assert stats["previous"][0, 0] == pytest.approx(1.0)
    assert stats["next"][0, 0] == pytest.approx(0.0)
    assert stats["entropy"][0, 0] == pytest.approx(0.0)
    assert stats["entropy"][0, 1] == pytest.approx(np.log(n), rel=1e-5)
    assert stats["mean_distance"][0, 0] == pytest.approx(4 / 5)
    assert stats["special"][0, 1] == pytest.approx(1 / n)
    assert stats["punctuation"][0, 1] == pytest.approx(1 / n)
    assert stats["self"][0, 0] == pytest.approx(1 / 5)


def test_rollout_on_a_hand_made_two_layer_case():
    a1 = np.array([[1.0, 0.0], [1.0, 0.0]])  # both tokens read token 0
    a2 = np.array([[0.0, 1.0], [0.0, 1.0]])  # both tokens read token 1
    w = np.stack([a1[None], a2[None]]).astype(np.float32)  # (layers=2, heads=1, 2, 2)
    result = AttentionResult("hand", "x", None, _tokens(2), w)
    rollout = attention_rollout(result)
    r1 = 0.5 * a1 + 0.5 * np.eye(2)
    r2 = 0.5 * a2 + 0.5 * np.eye(2)
    np.testing.assert_allclose(rollout[0], r1, atol=1e-6)
    np.testing.assert_allclose(rollout[1], r2 @ r1, atol=1e-6)
    np.testing.assert_allclose(rollout[-1].sum(-1), 1.0, atol=1e-6)


def test_flow_of_a_single_identity_layer_is_the_identity():
    w = np.eye(3, dtype=np.float32)[None, None]  # one layer, one head, attends to itself
    flow = attention_flow(AttentionResult("hand", "x", None, _tokens(3), w))
    np.testing.assert_allclose(flow, np.eye(3), atol=1e-5)


def test_flow_refuses_long_inputs_with_a_sentence():
    w = np.full((1, 1, 60, 60), 1 / 60, dtype=np.float32)
    with pytest.raises(ProbeError, match="short inputs"):
        attention_flow(AttentionResult("hand", "x", None, _tokens(60), w))


def test_a_survey_averages_per_head_measures_over_texts(bundle):
    from workbench.explain import attention_survey

    texts = ["the cat sat on the mat.", "a dog ran in the park, fast."]
    survey = attention_survey(bundle, texts)
    single = [attention(bundle, t).stats["previous"] for t in texts]
    np.testing.assert_allclose(survey.measures["previous"], (single[0] + single[1]) / 2, atol=1e-6)
    assert survey.by_layer("sep").shape == (2,)
    assert survey.texts == 2 and survey.tokens > 10


def test_a_survey_of_nothing_is_refused(bundle):
    from workbench.explain import attention_survey

    with pytest.raises(ProbeError, match="list of texts"):
        attention_survey(bundle, [])
