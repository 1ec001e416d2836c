"""load_model: presets, folders, kinds, save/load round trips and the sentences for bad input."""

from __future__ import annotations

import json

import pytest
import torch

from workbench.errors import ModelLoadError
from workbench.models import eager_attention, load_model

# tiny_bert and tiny_gpt are the session's shared models (tests/conftest.py); make_tiny builds fresh ones.


def _logits(bundle, text="the cat sat on the mat"):
    with torch.no_grad():
        return bundle.model(**bundle.tokenizer(text, return_tensors="pt")).logits


def test_tiny_bert_is_a_masked_lm_with_a_trained_wordpiece_tokenizer(tiny_bert):
    assert tiny_bert.kind == "masked-lm"
    assert tiny_bert.tokenizer.mask_token == "[MASK]"
    assert tiny_bert.model.config.num_hidden_layers == 2
    assert _logits(tiny_bert).shape[-1] == len(tiny_bert.tokenizer)


def test_tiny_gpt_is_a_causal_lm_with_a_byte_level_tokenizer(tiny_gpt):
    assert tiny_gpt.kind == "causal-lm" and tiny_gpt.is_causal
    ids = tiny_gpt.tokenizer("naïve café 🙂")["input_ids"]
    assert tiny_gpt.tokenizer.decode(ids) == "naïve café 🙂"


def test_save_and_load_round_trip_gives_identical_logits(tiny_bert, tmp_path):
    folder = tiny_bert.save(tmp_path / "saved")
    assert (folder / "model.safetensors").exists()
    again = load_model(folder)
    assert again.kind == "masked-lm" and again.name == "tiny-bert"
    torch.testing.assert_close(_logits(again), _logits(tiny_bert))


def test_causal_round_trip_keeps_the_kind(tiny_gpt, tmp_path):
    again = load_model(tiny_gpt.save(tmp_path / "gpt"))
    assert again.kind == "causal-lm"
    torch.testing.assert_close(_logits(again), _logits(tiny_gpt))


def test_saving_over_a_previous_save_replaces_it(tiny_bert, tmp_path):
    tiny_bert.save(tmp_path / "m")
    tiny_bert.save(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_saving_into_a_folder_of_other_files_is_refused(tiny_bert, tmp_path):
    (tmp_path / "notes.txt").write_text("precious")
    with pytest.raises(ModelLoadError, match="not a saved workbench model"):
        tiny_bert.save(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "precious"


def test_a_classifier_head_takes_label_names(make_tiny):
    clf = make_tiny("tiny-bert", kind="classifier", label_names=["neg", "pos", "mixed"])
    assert clf.kind == "classifier" and clf.label_names == ["neg", "pos", "mixed"]
    assert _logits(clf).shape == (1, 3)


def test_a_saved_classifier_reloads_with_its_labels(make_tiny, tmp_path):
    clf = make_tiny("tiny-bert", kind="classifier", label_names=["no", "yes"])
    again = load_model(clf.save(tmp_path / "clf"))
    assert again.label_names == ["no", "yes"]


def test_the_same_seed_builds_the_same_preset(make_tiny):
    a = make_tiny("tiny-gpt", seed=3)
    b = make_tiny("tiny-gpt", seed=3)
    torch.testing.assert_close(_logits(a), _logits(b))


def test_eager_attention_returns_weights_and_restores_the_kernel(tiny_bert):
    model = tiny_bert.model
    model.set_attn_implementation("sdpa")
    inputs = tiny_bert.tokenizer("the cat sat", return_tensors="pt")
    with eager_attention(model):
        out = model(**inputs, output_attentions=True)
    assert len(out.attentions) == 2 and out.attentions[0].shape[1] == 2
    assert model.config._attn_implementation == "sdpa"


def test_unknown_model_name_lists_the_known_names():
    with pytest.raises(ModelLoadError, match="minilm, smollm2-135m, tiny-bert, tiny-gpt"):
        load_model("bert-base-nonsense")


def test_hub_id_fails_fast_when_the_hub_is_offline():
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        load_model("someone/some-model")


def test_a_folder_without_config_says_config_json_is_missing(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"config\.json is missing"):
        load_model(tmp_path)


def test_a_folder_without_weights_says_which_file_is_missing(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelLoadError, match=r"model\.safetensors is missing"):
        load_model(tmp_path)


def test_a_folder_without_a_tokenizer_says_so(tiny_bert, tmp_path):
    tiny_bert.model.save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json"):
        load_model(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "decoder"}, "Unknown kind 'decoder'"),
        ({"kind": "causal-lm"}, "cannot be built as 'causal-lm'"),
        ({"num_labels": 1, "kind": "classifier"}, "at least 2"),
        ({"label_names": ["a", "a"], "kind": "classifier"}, "two distinct"),
        ({"layers": 0}, "positive integer"),
        ({"hidden": 30, "heads": 4}, "divisible"),
        ({"depth": 3}, "Unknown preset options"),
    ],
)
def test_bad_preset_options_get_a_sentence(kwargs, message, make_tiny):
    with pytest.raises(ModelLoadError, match=message):
        make_tiny("tiny-bert", **kwargs)


def test_preset_options_on_a_real_model_are_refused():
    with pytest.raises(ModelLoadError, match="only apply to the presets"):
        load_model("minilm", layers=2)


def test_an_empty_name_is_refused():
    with pytest.raises(ModelLoadError, match="model name or folder is needed"):
        load_model("  ")


def test_a_preset_built_twice_from_one_corpus_has_one_vocabulary(make_tiny):
    a = make_tiny("tiny-bert")
    b = make_tiny("tiny-bert")
    assert a.tokenizer.get_vocab() == b.tokenizer.get_vocab()
