"""Students for distillation: every other layer copied exactly, a preset that shares the teacher's tokenizer and
labels, and compare_models on a teacher and its student (drift per student layer, against the layer it came from)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from workbench.compress import compare_models, quantize
from workbench.compress.agreement import jensen_shannon
from workbench.compress.distill import every_other_layer, keep_layers, layer_list, preset_student
from workbench.errors import CompressionError
from workbench.models import ModelBundle, eager_attention, load_model

LABELS = ["animal", "other"]
TEXT = "The cat sat on the mat and looked at the dog."


@pytest.fixture(scope="module")
def teacher(make_tiny, sharpen):
    # Sharpened: each layer moves the output clearly, so a layer copied from the wrong place would show.
    return sharpen(make_tiny("tiny-bert", kind="classifier", label_names=LABELS, layers=4, seed=3), 3.0)


@pytest.fixture(scope="module")
def student(teacher):
    return every_other_layer(teacher)


@pytest.fixture(scope="module")
def classic_bert(tiny_classifier):
    """A post-norm BERT (MiniLM's architecture, ``encoder.layer``) of 4 tiny layers, with the tiny tokenizer."""
    config = transformers.BertConfig(
        vocab_size=len(tiny_classifier.tokenizer),
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
        id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)},
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).eval()
    return ModelBundle(model, tiny_classifier.tokenizer, "classifier", "classic-bert", "test")


def _logits(bundle, text=TEXT):
    enc = bundle.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        return bundle.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits


def _layer_weights(bundle, index):
    return layer_list(bundle.model)[index].state_dict()


def test_every_other_layer_keeps_exactly_the_even_layers_weights(teacher, student):
    assert len(layer_list(student.model)) == 2
    assert student.model.config.num_hidden_layers == 2
    for mine, theirs in ((0, 0), (1, 2)):
        kept, original = _layer_weights(student, mine), _layer_weights(teacher, theirs)
        assert kept.keys() == original.keys()
        for key in kept:
            assert torch.equal(kept[key], original[key]), key
    assert not torch.equal(_layer_weights(student, 1)["mlp.Wi.weight"], _layer_weights(teacher, 1)["mlp.Wi.weight"])


def test_every_other_layer_records_its_teacher_and_the_layers_it_kept(teacher, student):
    assert student.extra["distillation"] == {"teacher": teacher.name, "layers": [0, 2]}
    assert student.kind == "classifier" and student.label_names == LABELS
    assert student.tokenizer is teacher.tokenizer


def test_a_student_gives_the_same_embeddings_and_head_weights(teacher, student):
    ids = teacher.tokenizer(TEXT, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        mine = student.model.base_model.embeddings(input_ids=ids)
        theirs = teacher.model.base_model.embeddings(input_ids=ids)
    assert torch.equal(mine, theirs)
    assert torch.equal(student.model.classifier.weight, teacher.model.classifier.weight)


def test_the_teacher_is_left_as_it_was(make_tiny):
    teacher = make_tiny("tiny-bert", kind="classifier", label_names=LABELS, layers=4)
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    every_other_layer(teacher)
    assert teacher.model.config.num_hidden_layers == 4 and len(layer_list(teacher.model)) == 4
    after = teacher.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_keeping_every_layer_gives_the_teachers_logits(teacher):
    assert torch.equal(_logits(keep_layers(teacher, range(4))), _logits(teacher))


def test_a_modernbert_student_saves_and_loads_to_the_same_logits(student, tmp_path):
    again = load_model(student.save(tmp_path / "student"))
    assert again.extra["distillation"]["layers"] == [0, 2]
    torch.testing.assert_close(_logits(again), _logits(student), atol=1e-6, rtol=0)


def test_a_bert_student_keeps_encoder_layers_renumbers_them_and_round_trips(classic_bert, tmp_path):
    student = every_other_layer(classic_bert)
    layers = layer_list(student.model)
    assert len(layers) == 2 and student.model.config.num_hidden_layers == 2
    assert [layer.attention.self.layer_idx for layer in layers] == [0, 1]
    for key, value in layers[1].state_dict().items():
        assert torch.equal(value, layer_list(classic_bert.model)[2].state_dict()[key])
    again = load_model(student.save(tmp_path / "bert-student"))
    torch.testing.assert_close(_logits(again), _logits(student), atol=1e-6, rtol=0)


def test_modernbert_layer_types_follow_the_kept_layers(make_tiny):
    teacher = make_tiny("tiny-bert", layers=4)
    teacher.model.config.layer_types = ["full_attention", "sliding_attention", "sliding_attention", "full_attention"]
    student = keep_layers(teacher, [0, 2, 3])
    assert student.model.config.layer_types == ["full_attention", "sliding_attention", "full_attention"]
    assert teacher.model.config.layer_types[1] == "sliding_attention"  # the teacher's config is its own


def test_a_preset_student_shares_the_teachers_tokenizer_labels_kind_and_width(teacher):
    student = preset_student(teacher, layers=1)
    assert student.tokenizer is teacher.tokenizer
    assert student.label_names == LABELS and student.kind == "classifier"
    config = student.model.config
    assert config.num_hidden_layers == 1 and config.hidden_size == teacher.model.config.hidden_size == 32
    assert config.num_attention_heads == teacher.model.config.num_attention_heads
    assert student.extra["distillation"] == {"teacher": teacher.name}


def test_students_of_what_cannot_be_distilled_are_refused(make_tiny, teacher):
    with pytest.raises(CompressionError, match="students are built from encoders, masked LMs and classifiers"):
        every_other_layer(make_tiny("tiny-gpt", layers=4))
    with pytest.raises(CompressionError, match="has 1 layer, so every other layer keeps all of it"):
        every_other_layer(make_tiny("tiny-bert", layers=1))
    with pytest.raises(CompressionError, match="already compressed"):
        every_other_layer(quantize(teacher))
    with pytest.raises(CompressionError, match=r"layers must be increasing indices of .*'s 4 layers \(0 to 3\)"):
        keep_layers(teacher, [2, 1])
    with pytest.raises(CompressionError, match="layers must be increasing indices"):
        keep_layers(teacher, [0, 4])
    with pytest.raises(CompressionError, match="takes a ModelBundle"):
        every_other_layer("minilm")  # type: ignore[arg-type]
    with pytest.raises(CompressionError, match="distillation trains classifiers and masked LMs"):
        preset_student(make_tiny("tiny-gpt"))
    with pytest.raises(CompressionError, match="'tiny-gpt' is not a preset a student can be built from"):
        preset_student(teacher, "tiny-gpt")


# ------------------------------------------------------------------------------- compare_models on the pair


def _attentions(bundle, text):
    enc = bundle.tokenizer(text, return_tensors="pt")
    with torch.inference_mode(), eager_attention(bundle.model):
        out = bundle.model(**enc, output_attentions=True)
    return torch.stack([a[0] for a in out.attentions]).numpy()  # (layers, heads, query, key)


@pytest.fixture(scope="module")
def pair_report(teacher, student):
    return compare_models(teacher, student, texts=[TEXT], lengths=(8,), repeats=1)


def test_drift_has_a_row_per_student_layer_against_the_teacher_layer_it_came_from(teacher, student, pair_report):
    assert pair_report.attention_js.shape == (2, 2)
    assert pair_report.drift_layers == [0, 2]
    by_hand = jensen_shannon(_attentions(teacher, TEXT)[2], _attentions(student, TEXT)[1]).mean(-1)  # (heads,)
    np.testing.assert_allclose(pair_report.attention_js[1], by_hand, atol=1e-6)
    assert pair_report.attention_js[0] == pytest.approx([0.0, 0.0], abs=1e-6)  # layer 0 reads the same input
    assert pair_report.compression == {"method": "distillation", "teacher": teacher.name, "layers": [0, 2]}
    row = int(np.unravel_index(pair_report.attention_js.argmax(), (2, 2))[0])
    assert f"at layer {row} (original's layer {[0, 2][row]})" in str(pair_report)


def test_a_pair_that_cannot_be_paired_layer_by_layer_has_no_drift_and_says_why(teacher):
    student = preset_student(teacher, layers=2, hidden=32, heads=2)
    report = compare_models(teacher, student, texts=[TEXT], lengths=(8,), repeats=1)
    assert report.attention_js.size == 0 and report.drift_layers == []
    assert report.drift_note.startswith("4 and 2 layers, and")
    assert "attention drift: not measured (4 and 2 layers" in str(report)
    assert len(report.spearman) == 1  # attribution agreement still runs on the shared tokens
    wider = preset_student(teacher, layers=2, hidden=32, heads=4)
    assert compare_models(teacher, wider, texts=[TEXT], lengths=(8,), repeats=1).drift_note == (
        "2 and 4 attention heads per layer; drift compares head with head"
    )


def test_the_view_and_the_figure_take_a_teacher_student_report(pair_report):
    from workbench.figures import plot
    from workbench.ui.compression_view import CompressionView

    state = CompressionView(pair_report).report
    assert len(state["drift"]) == 2 and state["method"] == "distillation"
    np.testing.assert_array_equal(plot(pair_report).data[0].z, pair_report.attention_js)
