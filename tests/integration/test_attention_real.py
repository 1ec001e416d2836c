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
