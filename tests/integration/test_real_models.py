"""The real pretrained models from package indexes, loaded with no model hub."""

from __future__ import annotations

import pytest
import torch

from workbench.models import load_model

pytestmark = pytest.mark.assets


@pytest.fixture(scope="module")
def minilm():
    return load_model("minilm", attn_implementation="eager")


@pytest.fixture(scope="module")
def smollm2():
    return load_model("smollm2-135m")


def test_minilm_returns_6_by_12_attention_maps_under_eager_attention(minilm):
    inputs = minilm.tokenizer("The movie was surprisingly good.", return_tensors="pt")
    with torch.no_grad():
        out = minilm.model(**inputs, output_attentions=True)
    n = inputs["input_ids"].shape[1]
    assert len(out.attentions) == 6
    assert out.attentions[0].shape == (1, 12, n, n)
    torch.testing.assert_close(out.attentions[3].sum(-1), torch.ones(1, 12, n))


def test_minilm_loads_with_a_fresh_classification_head():
    clf = load_model("minilm", kind="classifier", label_names=["negative", "positive"])
    with torch.no_grad():
        logits = clf.model(**clf.tokenizer("fine", return_tensors="pt")).logits
    assert logits.shape == (1, 2) and clf.label_names == ["negative", "positive"]


def test_minilm_loads_with_a_fresh_masked_lm_head():
    mlm = load_model("minilm", kind="masked-lm")
    inputs = mlm.tokenizer("the [MASK] sat", return_tensors="pt")
    with torch.no_grad():
        logits = mlm.model(**inputs).logits
    assert logits.shape[-1] == mlm.model.config.vocab_size == 30522


def test_smollm2_predicts_paris_among_the_top_3_next_tokens(smollm2):
    inputs = smollm2.tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        probs = smollm2.model(**inputs).logits[0, -1].softmax(-1)
    top3 = [smollm2.tokenizer.decode(int(i)) for i in probs.topk(3).indices]
    assert " Paris" in top3


def test_smollm2_is_a_30_layer_llama_with_9_heads(smollm2):
    cfg = smollm2.model.config
    assert (cfg.model_type, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads) == (
        "llama",
        30,
        9,
        3,
    )
    assert 134e6 < smollm2.num_parameters < 135e6


def test_smollm2_later_loads_read_the_converted_safetensors(smollm2):
    from workbench import assets

    converted = assets.cache_dir() / "converted" / "smollm2-135m"
    assert (converted / "model.safetensors").exists()
    assert "quantization_config" not in (converted / "config.json").read_text()
