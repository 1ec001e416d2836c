"""Attention on the real models: MiniLM and SmolLM2, with the tokens a reader would write."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.explain import attention
from workbench.models import load_model

pytestmark = pytest.mark.assets


@pytest.fixture(scope="module")
def minilm():
    return load_model("minilm")


def test_minilm_weights_equal_its_eager_output_attentions(minilm):
    text = "The movie was surprisingly good, wasn't it?"
    result = attention(minilm, text)
    enc = minilm.tokenizer(text, return_tensors="pt")
    eager = load_model("minilm", attn_implementation="eager")
    with torch.no_grad():
        reference = torch.stack(eager.model(**enc, output_attentions=True).attentions)[:, 0].numpy()
    np.testing.assert_allclose(result.weights, reference, atol=1e-6)
    assert result.weights.shape[:2] == (6, 12)


def test_minilm_sentence_pairs_get_segment_ids(minilm):
    result = attention(minilm, "The cat sat.", pair="It was happy.")
    assert result.tokens.segment_ids == [0] * 6 + [1] * 5
    assert result.tokens.text[0] == "[CLS]" and result.tokens.special[0]


def test_smollm2_tokens_show_accents_emoji_and_cjk_as_written():
    smol = load_model("smollm2-135m")
    result = attention(smol, "naïve café 🙂 東京")
    shown = "".join(result.tokens.text)
    assert shown == "naïve café 🙂 東京"
    assert not any("Ġ" in t or "Ã" in t for t in result.tokens.text)
    assert result.weights.shape[:2] == (30, 9)


def _eager_reference(bundle, text):
    """The result from the model's own eager output_attentions at 512 tokens, statistics from the full maps."""
    import sys

    module = sys.modules["workbench.explain.attention"]
    original = module.capture
    module.capture = lambda *args, **kwargs: None  # as for a model whose attention cannot be captured
    try:
        return attention(bundle, text, max_tokens=512, memory_mb=8192)
    finally:
        module.capture = original


@pytest.mark.parametrize("name", ["minilm", "smollm2-135m"])
def test_maps_and_statistics_from_captured_keys_equal_eager_attention_at_512_tokens(name, minilm):
    from workbench.explain import STATISTICS
    from workbench.explain.attention import pool_maps

    bundle = minilm if name == "minilm" else load_model(name)
    text = " ".join(["The movie was slow, but the ending made it worth the wait, said the critic."] * 40)
    captured = attention(bundle, text, max_tokens=512, keep_weights=False)
    reference = _eager_reference(bundle, text)
    assert captured.num_tokens == reference.num_tokens == 512 and captured.full_weights is None
    for layer in range(captured.num_layers):
        for head in range(captured.num_heads):
            np.testing.assert_allclose(captured.head(layer, head), reference.weights[layer, head], atol=1e-5)
    for statistic in STATISTICS:
        np.testing.assert_allclose(
            captured.stats[statistic], reference.stats[statistic], rtol=1e-5, atol=1e-5, err_msg=statistic
        )
    np.testing.assert_allclose(captured.pooled, pool_maps(reference.weights, captured.block_size), atol=1e-5)
