"""Compression of tiny models: int8, pruning and ONNX run, shrink, stay close, round-trip, spare the original."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from workbench.compress import compare_models, export_onnx, prune, quantize
from workbench.compress.agreement import jensen_shannon
from workbench.compress.operations import weights_bytes
from workbench.errors import CompressionError
from workbench.models import load_model


@pytest.fixture(scope="module")
def classifier(make_tiny):
    return make_tiny("tiny-bert", kind="classifier", label_names=["animal", "other"], seed=2)


@pytest.fixture(scope="module")
def gpt(make_tiny):
    return make_tiny("tiny-gpt", seed=2)


@pytest.fixture(scope="module")
def exported(classifier, tmp_path_factory):
    return export_onnx(classifier, tmp_path_factory.mktemp("onnx") / "clf")


def _logits(bundle, texts):
    enc = bundle.tokenizer(texts, return_tensors="pt", padding=True)
    with torch.inference_mode():
        return bundle.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits


def _weights(bundle):
    return {k: v.clone() for k, v in bundle.model.state_dict().items()}


TEXTS = ["The cat sat on the mat.", "To be, or not to be, that is the question."]


@pytest.mark.parametrize("which", ["classifier", "gpt"])
def test_int8_runs_is_smaller_and_stays_close(which, request):
    bundle = request.getfixturevalue(which)
    before = _weights(bundle)
    int8 = quantize(bundle)
    assert weights_bytes(int8) < 0.6 * weights_bytes(bundle)
    gap = (_logits(int8, TEXTS) - _logits(bundle, TEXTS)).abs().max()
    assert 0 < gap < 0.1
    for key, value in _weights(bundle).items():  # the original is untouched
        assert torch.equal(value, before[key])
    assert type(bundle.model.get_submodule(int8.extra["compression"]["layers"][0])) is torch.nn.Linear


@pytest.mark.parametrize("structured", [False, True])
def test_pruning_zeroes_that_share_is_smaller_and_stays_bounded(classifier, structured):
    before = _weights(classifier)
    sparse = prune(classifier, 0.5, structured=structured)
    info = sparse.extra["compression"]
    assert info["sparsity"] == pytest.approx(0.5, abs=0.02)
    layer = sparse.model.get_submodule(info["layers"][0]).weight
    if structured:  # whole output rows
        assert int((layer.abs().sum(1) == 0).sum()) == layer.shape[0] // 2
    assert weights_bytes(sparse) < 0.75 * weights_bytes(classifier)
    gap = (_logits(sparse, TEXTS) - _logits(classifier, TEXTS)).abs().max()
    assert 0 < gap < 5
    for key, value in _weights(classifier).items():
        assert torch.equal(value, before[key])


def test_pruning_nothing_changes_nothing(classifier, gpt):
    for bundle in (classifier, gpt):
        same = prune(bundle, 0.0)
        assert torch.equal(_logits(same, TEXTS), _logits(bundle, TEXTS))


def test_a_tied_output_head_is_not_pruned(gpt):
    sparse = prune(gpt, 0.5)
    emb = sparse.model.get_input_embeddings().weight
    assert torch.equal(emb, gpt.model.get_input_embeddings().weight)


def test_onnx_matches_pytorch_within_1e_4(classifier, exported):
    longer = ["A much longer input than any the export saw, with many words to run through every layer " * 2]
    for texts in (TEXTS, longer):
        assert (_logits(exported, texts) - _logits(classifier, texts)).abs().max() <= 1e-4
    assert exported.extra["compression"]["max_abs_diff"] <= 1e-4
    assert (exported.model.path.parent / "model.onnx").exists()


@pytest.mark.parametrize("make", ["int8", "prune", "structured", "onnx"])
def test_compressed_bundles_save_and_load_exactly(classifier, exported, make, tmp_path):
    bundle = {
        "int8": lambda: quantize(classifier),
        "prune": lambda: prune(classifier, 0.4),
        "structured": lambda: prune(classifier, 0.4, structured=True),
        "onnx": lambda: exported,
    }[make]()
    saved = bundle.save(tmp_path / "saved")
    again = load_model(saved)
    assert again.name == bundle.name and again.extra["compression"]["method"] == bundle.extra["compression"]["method"]
    torch.testing.assert_close(_logits(again, TEXTS), _logits(bundle, TEXTS), atol=0, rtol=0)


def test_a_model_compared_with_itself_shows_no_drift(classifier):
    from workbench.data import load_labelled

    data = load_labelled([(t, "animal" if "cat" in t else "other") for t in TEXTS * 3])
    report = compare_models(classifier, classifier, eval_data=data, texts=TEXTS, lengths=(8, 16), repeats=3)
    assert report.attention_js.shape == (2, 2) and float(report.attention_js.max()) == 0.0
    assert report.spearman == [1.0, 1.0]
    assert report.metric == "accuracy" and report.metric_delta == 0 and report.prediction_agreement == 1.0
    assert report.size_ratio == 1.0
    assert set(report.latency_ms["original"]) == {8, 16}
    text = str(report)
    assert "accuracy" in text and "attention drift" in text


def test_the_report_on_int8_and_onnx(classifier, exported, gpt):
    int8 = quantize(classifier)
    report = compare_models(classifier, int8, texts=TEXTS[:1], lengths=(16,), repeats=3)
    assert 0 < report.attention_drift < 0.05 and report.size_ratio < 0.6
    assert len(report.examples) == 1 and report.examples[0]["tokens"]
    onnx = compare_models(classifier, exported, texts=TEXTS[:1], lengths=(16,), repeats=3)
    assert onnx.attention_drift < 1e-6 and onnx.spearman[0] == pytest.approx(1.0)
    lm = compare_models(gpt, quantize(gpt), eval_data=TEXTS * 2, texts=["The cat sat on the"], lengths=(8,), repeats=2)
    assert lm.metric == "perplexity" and math.isfinite(lm.metric_values["compressed"])
    assert report.to_dict()["attention_js"] == report.attention_js.tolist()


def test_jensen_shannon_on_hand_made_distributions():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    q = np.array([[0.0, 1.0], [0.5, 0.5]])
    assert jensen_shannon(p, q).tolist() == [1.0, 0.0]  # disjoint: one bit; equal: zero
    assert jensen_shannon([0.5, 0.5], [1.0, 0.0]) == pytest.approx(0.3113, abs=1e-4)


@pytest.mark.parametrize("amount", [-0.1, 1, 1.5, "half", True, math.nan])
def test_pruning_amounts_outside_0_1_are_refused(classifier, amount):
    with pytest.raises(CompressionError, match=r"amount must be a fraction in \[0, 1\)"):
        prune(classifier, amount)


def test_quantizing_twice_is_refused(classifier):
    with pytest.raises(CompressionError, match="already quantized to int8; quantize the original"):
        quantize(quantize(classifier))


def test_exporting_ops_onnx_lacks_is_refused(classifier, tmp_path):
    with pytest.raises(CompressionError, match="ONNX has no operator for PyTorch's dynamic int8"):
        export_onnx(quantize(classifier), tmp_path / "x")


def test_other_mistakes_are_one_sentence(classifier, gpt, tmp_path):
    with pytest.raises(CompressionError, match="prune the original model first"):
        prune(quantize(classifier), 0.3)
    with pytest.raises(CompressionError, match="not one model before and after"):
        compare_models(classifier, gpt)
    with pytest.raises(CompressionError, match="takes a ModelBundle"):
        quantize("minilm")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(CompressionError, match="already holds other files"):
        export_onnx(classifier, tmp_path / "busy")
    with pytest.raises(CompressionError, match="needs gradients"):
        compare_models(classifier, quantize(classifier), texts=TEXTS, attribution="integrated_gradients")
    with pytest.raises(CompressionError, match="Each of texts is empty"):
        compare_models(classifier, classifier, texts=[""])
    with pytest.raises(CompressionError, match="texts must be a list of strings"):
        compare_models(classifier, classifier, texts=42)


def test_the_report_says_slower_when_the_copy_is_slower(classifier):
    report = compare_models(classifier, classifier, lengths=(8,), repeats=1)
    report.latency_ms["compressed"][8] = report.latency_ms["original"][8] * 4
    assert "4.00x slower" in str(report)
