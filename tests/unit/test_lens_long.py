"""The logit lens on long texts: chosen positions, the vocabulary a chunk at a time, and the memory budget."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from workbench.errors import MemoryBudgetError, ProbeError
from workbench.explain import logit_lens

TEXT = " ".join(["the cat sat on the mat and the dog ran to the park"] * 3)


@pytest.fixture(scope="module")
def gpt(make_tiny):
    return make_tiny("tiny-gpt", max_positions=256)


def test_chosen_positions_are_the_same_columns_as_the_full_lens(gpt):
    full = logit_lens(gpt, TEXT, top_k=3)
    chosen = [0, 5, -1]
    part = logit_lens(gpt, TEXT, top_k=3, positions=chosen)
    columns = [0, 5, full.top_ids.shape[1] - 1]
    assert part.positions == columns and part.target == full.target  # the default target is read at the end
    np.testing.assert_allclose(part.top_probs, full.top_probs[:, columns], atol=1e-6)
    np.testing.assert_array_equal(part.target_ranks, full.target_ranks[:, columns])
    assert part.first_layer_where_top() == full.first_layer_where_top()
    with pytest.raises(ProbeError, match=r"Position 3 was not read.*positions=\[\.\.\., 3\]"):
        part.first_layer_where_top(3)


def test_the_vocabulary_goes_through_the_head_a_chunk_at_a_time(gpt, monkeypatch):
    lens_module = sys.modules["workbench.explain.lens"]
    monkeypatch.setattr(lens_module, "CHUNK", 16)
    monkeypatch.setattr(lens_module, "_packed_unembedding", lambda head: None)  # so the head module itself runs
    rows_seen = []
    handle = gpt.model.get_output_embeddings().register_forward_hook(
        lambda module, args, out: rows_seen.append(out.reshape(-1, out.shape[-1]).shape[0])
    )
    try:
        lens = logit_lens(gpt, TEXT)
    finally:
        handle.remove()
    cells = lens.top_ids.shape[0] * lens.top_ids.shape[1]
    assert max(rows_seen) == 16  # never more than a chunk of cells at a time
    assert sum(rows_seen) == cells + 1  # every cell once, and the read position once for the default target


def test_a_lens_over_its_budget_answers_before_the_forward(gpt):
    calls = []
    handle = gpt.model.base_model.register_forward_pre_hook(lambda *args: calls.append(1))
    try:
        with pytest.raises(MemoryBudgetError, match=r"The logit lens on \d+ tokens of tiny-gpt .* fewer positions"):
            logit_lens(gpt, " ".join([TEXT] * 5), memory_mb=1)
    finally:
        handle.remove()
    assert calls == []


@pytest.mark.parametrize("positions", [[], [10_000], ["a"], "0", [True]])
def test_a_bad_position_is_one_sentence(gpt, positions):
    with pytest.raises(ProbeError, match="position"):
        logit_lens(gpt, TEXT, positions=positions)


def test_explain_calls_keep_no_key_value_cache_and_restore_the_setting(gpt):
    from workbench.explain.inputs import inference

    assert gpt.model.config.use_cache is True
    enc = gpt.tokenizer(TEXT, return_tensors="pt")
    with inference(gpt.model):
        assert gpt.model.config.use_cache is False
        out = gpt.model(**enc)
    assert out.past_key_values is None  # SmolLM2 at 4,096 tokens would have kept 189 MB of them
    assert gpt.model.config.use_cache is True
