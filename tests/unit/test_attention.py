"""Attention results: weights as the model gives them, statistics, rollout and flow on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.errors import MemoryBudgetError
from workbench.explain.attention import (
    STATISTICS,
    AttentionResult,
    attention,
    attention_flow,
    attention_rollout,
    head_statistics,
    pool_maps,
)
from workbench.explain.budget import memory_budget, set_memory_budget
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


# --- maps recomputed from captured queries and keys, within a memory budget -------------------------

LONG = " ".join(["the cat sat on the mat and the dog ran to the park, then the cat sat again."] * 30)


@pytest.fixture(scope="module", params=["tiny-bert", "tiny-gpt"])
def long_bundle(request, make_tiny):
    """A tiny model that reads 512 tokens: long enough for pooled blocks of 2 tokens."""
    return make_tiny(request.param, max_positions=512)


def _eager_reference(bundle, text, **kwargs):
    """The result as eager attention gives it: the model's own output_attentions, statistics from full maps."""
    import sys

    module = sys.modules["workbench.explain.attention"]
    original = module.capture
    module.capture = lambda *args, **kw: None  # as for a model whose attention cannot be captured
    try:
        return attention(bundle, text, memory_mb=4096, **kwargs)
    finally:
        module.capture = original


def test_captured_maps_and_statistics_equal_eager_attention_at_512_tokens(long_bundle):
    captured = attention(long_bundle, LONG, keep_weights=False)
    eager = _eager_reference(long_bundle, LONG)
    assert captured.full_weights is None and captured.maps is not None and eager.maps is None
    assert captured.num_tokens == eager.num_tokens == 512
    for layer in range(captured.num_layers):
        for head in range(captured.num_heads):
            np.testing.assert_allclose(captured.head(layer, head), eager.weights[layer, head], atol=1e-5)
    assert set(captured.stats) == set(eager.stats) == set(STATISTICS)
    for name in STATISTICS:
        np.testing.assert_allclose(captured.stats[name], eager.stats[name], rtol=1e-5, atol=1e-5, err_msg=name)
    assert eager.stats["induction"].max() > 0  # the repeated sentence gives induction keys to look at


def test_pooled_maps_are_the_block_means_of_the_full_maps(long_bundle):
    captured = attention(long_bundle, LONG, keep_weights=False)
    eager = _eager_reference(long_bundle, LONG)
    assert captured.block_size == eager.block_size == 2  # 512 tokens in blocks of 2: 256 a side
    np.testing.assert_allclose(captured.pooled, pool_maps(eager.weights, 2), atol=1e-5)
    np.testing.assert_allclose(captured.pooled.sum(-1), 1.0, atol=1e-4)  # each block's row still sums to 1
    np.testing.assert_allclose(captured.thumbnails(), eager.thumbnails(), atol=1e-6)


def test_rows_and_regions_are_slices_of_the_head(long_bundle):
    result = attention(long_bundle, LONG, keep_weights=False)
    full = result.head(1, 1)
    np.testing.assert_allclose(result.rows(1, 1, 100, 140), full[100:140], atol=1e-7)
    np.testing.assert_allclose(result.row(1, 1, 511), full[511], atol=1e-7)
    np.testing.assert_allclose(result.region(1, 1, (10, 20), (300, 320)), full[10:20, 300:320], atol=1e-7)
    with pytest.raises(ProbeError, match="start < stop"):
        result.rows(0, 0, 40, 10)
    with pytest.raises(ProbeError, match="head must be an index below 2"):
        result.row(0, 7, 0)


def test_short_results_keep_full_weights_and_long_ones_name_the_accessors(long_bundle):
    short = attention(long_bundle, "the cat sat on the mat")
    assert short.full_weights is not None and short.weights.shape[2] == short.num_tokens
    long = attention(long_bundle, LONG, keep_weights=False)
    with pytest.raises(ProbeError, match=r"result\.head\(layer, head\)"):
        _ = long.weights


def test_block_rollout_of_single_token_blocks_is_the_exact_rollout(long_bundle):
    text = " ".join(LONG.split()[:60])  # under 256 tokens: blocks of one token
    captured = attention(long_bundle, text, keep_weights=False)
    eager = _eager_reference(long_bundle, text)
    assert captured.block_size == 1
    np.testing.assert_allclose(attention_rollout(captured), attention_rollout(eager), atol=1e-5)


def test_block_rollout_rows_sum_to_one_between_blocks(long_bundle):
    rollout = attention_rollout(attention(long_bundle, LONG, keep_weights=False))
    assert rollout.shape == (2, 256, 256)
    np.testing.assert_allclose(rollout.sum(-1), 1.0, atol=1e-4)


def test_a_call_over_its_budget_answers_before_running_the_model(long_bundle):
    calls = []
    handle = long_bundle.model.register_forward_pre_hook(lambda *args: calls.append(1))
    try:
        with pytest.raises(MemoryBudgetError, match=r"Attention on 512 tokens .* needs about [\d,]+ MB.*memory_mb="):
            attention(long_bundle, LONG, memory_mb=1, keep_weights=True)
    finally:
        handle.remove()
    assert calls == []


def test_the_kernel_budget_is_the_default_of_every_later_call(long_bundle):
    old = set_memory_budget(1)
    try:
        with pytest.raises(MemoryBudgetError, match="budget of 1 MB"):
            attention(long_bundle, LONG)
        assert attention(long_bundle, LONG, memory_mb=512).num_tokens == 512  # a call's own budget wins
    finally:
        set_memory_budget(old)
    assert memory_budget() == old


def test_half_precision_keys_when_float32_does_not_fit(make_tiny):
    bundle = make_tiny("tiny-gpt", max_positions=2048, hidden=128, heads=4)
    text = " ".join(LONG.split() * 4)
    exact = attention(bundle, text, memory_mb=2048, keep_weights=False)
    assert exact.maps.precision == "float32"
    tight = None
    for budget in range(1, 2048):  # the smallest budget that fits (a refusal costs no forward): not float32
        try:
            tight = attention(bundle, text, memory_mb=budget, keep_weights=False)
            break
        except MemoryBudgetError:
            continue
    assert tight is not None and tight.maps.precision == "float16"
    assert "float16" in tight.note
    for name in STATISTICS:  # statistics come from the float32 values during the forward
        np.testing.assert_allclose(tight.stats[name], exact.stats[name], rtol=1e-5, atol=1e-5, err_msg=name)
    difference = np.abs(tight.rows(1, 3, 2000, 2010) - exact.rows(1, 3, 2000, 2010)).max()
    assert 0 < difference < 2e-3


def test_capture_restores_the_kernel_even_when_the_forward_fails(long_bundle, monkeypatch):
    import sys

    maps = sys.modules["workbench.explain.attention_maps"]
    before = long_bundle.model.config._attn_implementation

    def broken(*args, **kwargs):
        raise RuntimeError("a layer failed")

    monkeypatch.setattr(maps._Collector, "add", broken)
    with pytest.raises(RuntimeError, match="a layer failed"):
        attention(long_bundle, "the cat sat")
    assert long_bundle.model.config._attn_implementation == before
    assert getattr(maps._state, "collector", None) is None


def test_induction_share_on_a_hand_made_repeat():
    ids = [7, 8, 9, 7, 8, 9]  # the second 7 can look at the 8 that followed the first 7, and so on
    n = len(ids)
    w = np.zeros((1, 2, n, n), dtype=np.float32)
    w[0, :, np.arange(n), np.arange(n)] = 1.0  # both heads attend to themselves...
    for q, k in ((3, 1), (4, 2), (5, 3)):  # ...except head 1 at the repeats, which reads the induction key
        w[0, 1, q] = 0
        w[0, 1, q, k] = 1.0
    tokens = _tokens(n)
    tokens.ids = ids
    stats = head_statistics(w, tokens)
    assert stats["induction"][0, 0] == pytest.approx(0.0)
    assert stats["induction"][0, 1] == pytest.approx(1.0)


def _variant(bundle, config_class, model_class, **changes):
    """The same tokenizer with a model built from ``bundle``'s config with ``changes``."""
    import dataclasses

    torch.manual_seed(0)
    config = config_class(**{**bundle.model.config.to_dict(), **changes})
    return dataclasses.replace(bundle, model=model_class(config).eval(), name=f"{bundle.name}-variant")


@pytest.fixture(scope="module")
def grouped_query(make_tiny):
    """A Llama with grouped-query attention: 4 query heads share 2 key heads, as SmolLM2's 9 share 3."""
    import transformers

    base = make_tiny("tiny-gpt", max_positions=512, heads=4)
    return _variant(base, transformers.LlamaConfig, transformers.LlamaForCausalLM, num_key_value_heads=2)


@pytest.fixture(scope="module")
def sliding_window(make_tiny):
    """A ModernBERT whose layers alternate a 16-token sliding window with full attention: an explicit mask."""
    import transformers

    base = make_tiny("tiny-bert", max_positions=512)
    return _variant(
        base,
        transformers.ModernBertConfig,
        transformers.ModernBertForMaskedLM,
        layer_types=["sliding_attention", "full_attention"],
        local_attention=16,
    )


@pytest.mark.parametrize("which", ["grouped_query", "sliding_window"])
def test_captured_maps_equal_eager_attention_with_shared_keys_and_with_a_window(which, request):
    bundle = request.getfixturevalue(which)
    captured = attention(bundle, LONG, keep_weights=False)
    eager = _eager_reference(bundle, LONG)
    assert captured.maps is not None
    for layer in range(captured.num_layers):
        for head in range(captured.num_heads):
            np.testing.assert_allclose(captured.head(layer, head), eager.weights[layer, head], atol=1e-5)
    for name in STATISTICS:
        np.testing.assert_allclose(captured.stats[name], eager.stats[name], rtol=1e-5, atol=1e-5, err_msg=name)
    if which == "sliding_window":  # the window's layer sees nothing 16 or more tokens away
        assert captured.maps.layers[0].allowed is not None and captured.maps.layers[1].allowed is None
        assert captured.row(0, 0, 300)[:250].max() == 0 and captured.row(1, 0, 300)[:250].max() > 0


def test_concurrent_calls_leave_the_models_kernel_as_it_was(long_bundle):
    import threading

    from workbench.models import eager_attention

    before = long_bundle.model.config._attn_implementation
    errors = []

    def work(use_eager):
        try:
            for _ in range(3):
                if use_eager:
                    with eager_attention(long_bundle.model):
                        long_bundle.model(**long_bundle.tokenizer("the cat sat", return_tensors="pt"))
                else:
                    attention(long_bundle, "the cat sat on the mat")
        except Exception as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i % 2 == 0,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert long_bundle.model.config._attn_implementation == before
