"""Probing classifiers: a linear probe per layer, held-out accuracy, a control task, across checkpoints."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from workbench.data import LabelledData, load_labelled
from workbench.errors import DataError, MemoryBudgetError, ModelListError, ProbeError
from workbench.explain import probing
from workbench.explain.probing import layer_features, probe_layers
from workbench.training import TrainConfig, Trainer
from workbench.training.checkpoint import list_checkpoints

FILLER = ["the", "sat", "on", "mat", "park", "ran", "warm", "slept", "looked", "quick", "river", "bank"]


def _first_word_data(count: int = 200) -> LabelledData:
    """Texts whose label is their first word ("cat" or "dog"), followed by five random filler words."""
    rng = np.random.default_rng(7)
    pairs = []
    for i in range(count):
        animal = "cat" if i % 2 == 0 else "dog"
        pairs.append((" ".join([animal, *rng.choice(FILLER, size=5)]), animal))
    return load_labelled(pairs)


def _fake_features(bundle, texts, **options):
    """Three rows: noise, a row whose unit 0 is the label (+1 for "pos", -1 for "neg") plus noise, noise."""
    rng = np.random.default_rng(len(texts))
    features = rng.normal(size=(3, len(texts), 16)).astype(np.float32)  # (rows, texts, hidden)
    features[1, :, 0] = [1.0 if t.startswith("pos") else -1.0 for t in texts]
    return features


def _pos_neg(positive: int, negative: int) -> list[tuple[str, str]]:
    return [(f"pos {i} word{i % 17}", "pos") for i in range(positive)] + [
        (f"neg {i} word{i % 13}", "neg") for i in range(negative)
    ]


@pytest.fixture
def fake_features(monkeypatch):
    monkeypatch.setattr(probing, "layer_features", _fake_features)


def test_a_first_token_that_decides_the_label_is_read_exactly_and_the_shuffled_control_stays_near_chance(tiny_gpt):
    data = _first_word_data()
    firsts = {tiny_gpt.tokenizer(t)["input_ids"][0] for t in ("cat sat", "dog sat")}
    assert len(firsts) == 2  # the two classes start with different tokens
    # A causal model's first position sees only its own token, so every row's "cls" vector is the label's.
    result = probe_layers(tiny_gpt, data, pooling="cls", test_share=0.5, progress=False)
    assert result.accuracy.shape == (1, 3) and result.test_examples == 100
    np.testing.assert_array_equal(result.accuracy, 1.0)
    # The features take two values, so the probe can only guess the shuffled labels: chance is 0.5, and 100
    # test texts give a standard error of 0.05; 0.15 is three of them.
    assert np.all(np.abs(result.control_accuracy - 0.5) <= 0.15)
    assert np.all(result.selectivity >= 0.35)


def test_the_probe_finds_the_one_row_that_carries_the_label(tiny_bert, fake_features):
    result = probe_layers(tiny_bert, _pos_neg(100, 100), test_share=0.5, progress=False)
    assert result.layer_names == ["embeddings", "layer 1", "layer 2"]
    assert result.accuracy[0, 1] == 1.0 and result.best_layer() == 1
    # Rows of noise: 16 units, 100 training texts; chance is 0.5 and 100 test texts give a standard error of 0.05.
    assert abs(result.accuracy[0, 0] - 0.5) <= 0.15 and abs(result.accuracy[0, 2] - 0.5) <= 0.15
    assert np.all(np.abs(result.control_accuracy - 0.5) <= 0.15)


def test_majority_is_the_held_out_share_of_the_training_splits_most_common_class(tiny_bert, fake_features):
    result = probe_layers(tiny_bert, _pos_neg(40, 12), test_share=0.25, progress=False)
    assert (result.train_examples, result.test_examples) == (39, 13)  # 10 + 3 held out, each class its share
    assert result.label_names == ["neg", "pos"]
    assert math.isclose(result.majority, 10 / 13)


def test_max_examples_keeps_each_classs_share(tiny_bert, fake_features):
    result = probe_layers(tiny_bert, _pos_neg(100, 50), max_examples=30, test_share=0.25, progress=False)
    assert result.train_examples + result.test_examples == 30
    assert math.isclose(result.majority, 5 / 7)  # 20 "pos" and 10 "neg" kept: 5 and 2 held out


def test_the_same_seed_gives_the_same_numbers_and_another_seed_another_split(tiny_gpt):
    data = _first_word_data(60)
    once, again = (probe_layers(tiny_gpt, data, control="word-type", seed=3, progress=False) for _ in range(2))
    np.testing.assert_array_equal(once.accuracy, again.accuracy)
    np.testing.assert_array_equal(once.control_accuracy, again.control_accuracy)
    labels = np.asarray(data.labels)
    train, test = probing._split(labels, 0.25, 3, data.label_names)
    assert np.array_equal(probing._split(labels, 0.25, 3, data.label_names)[1], test)
    assert not np.array_equal(probing._split(labels, 0.25, 4, data.label_names)[1], test)
    assert np.array_equal(np.bincount(labels[test]), [8, 8]) and len(np.intersect1d(train, test)) == 0
    shuffled = probing._control_labels(data.texts, labels, "shuffle", 3)
    assert np.array_equal(shuffled, probing._control_labels(data.texts, labels, "shuffle", 3))
    assert not np.array_equal(shuffled, probing._control_labels(data.texts, labels, "shuffle", 4))
    assert np.array_equal(np.bincount(shuffled), np.bincount(labels))  # a permutation keeps the class counts


def test_a_word_type_control_label_is_a_function_of_the_word_types_alone():
    words = [f"w{i}" for i in range(20)]
    texts = [*words, "w0 w1 w2", "W2, w1 w0!", "w3 w4", "w4 w3"]
    labels = np.asarray([0, 1] * 12)
    control = probing._control_labels(texts, labels, "word-type", 5)
    single = dict(zip(words, control[:20], strict=True))
    assert len(set(single.values())) == 2  # both classes drawn
    assert control[20] == control[21] and control[22] == control[23]  # the same word types, another order and case
    assert control[20] in {single["w0"], single["w1"], single["w2"]}  # one of its own words' labels


def test_a_word_type_control_keeps_about_the_class_shares_of_unbalanced_data():
    rng = np.random.default_rng(0)
    vocabulary = [f"v{i}" for i in range(300)]
    texts = [" ".join(rng.choice(vocabulary, size=12)) for _ in range(2000)]
    labels = (rng.random(2000) < 0.13).astype(np.int64)  # sms-spam's share of spam
    control = probing._control_labels(texts, labels, "word-type", 1)
    # A majority vote over twelve words would give the rare class to almost no text (about 0.1%).
    assert abs(control.mean() - labels.mean()) < 0.05, control.mean()


@pytest.mark.parametrize("name", ["tiny_bert", "tiny_gpt"])
def test_mean_pooling_ignores_padding(name, request):
    bundle = request.getfixturevalue(name)
    short = "the cat sat"
    alone = layer_features(bundle, [short])
    padded = layer_features(bundle, ["a dog ran in the park while the cat slept on the warm mat", short, "to be"])
    assert alone.shape == (3, 1, 32) and padded.shape == (3, 3, 32)  # (rows, texts, hidden)
    np.testing.assert_allclose(padded[:, 1], alone[:, 0], atol=1e-5)
    first = layer_features(bundle, [short, "a dog ran in the park"], pooling="cls")
    np.testing.assert_allclose(first[:, 0], layer_features(bundle, [short], pooling="cls")[:, 0], atol=1e-5)
    assert not np.allclose(first[:, 0], alone[:, 0])  # the first token's state is not the mean


@pytest.mark.parametrize("name", ["tiny_bert", "tiny_gpt"])
def test_last_pooling_reads_each_texts_last_real_token_not_the_padding(name, request):
    bundle = request.getfixturevalue(name)
    short, long = "the cat sat", "a dog ran in the park while the cat slept on the warm mat"
    padded = layer_features(bundle, [long, short], pooling="last")  # short is padded on the right
    alone = layer_features(bundle, [short], pooling="last")
    np.testing.assert_allclose(padded[:, 1], alone[:, 0], atol=1e-5)
    ids = bundle.tokenizer(short, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        states = bundle.model.base_model(ids, output_hidden_states=True).hidden_states
    np.testing.assert_allclose(alone[:, 0], torch.stack(states)[:, 0, -1].numpy(), atol=1e-5)


def test_a_run_folder_gives_one_row_per_checkpoint_in_step_order(make_tiny, tmp_path):
    data = _first_word_data(48)
    bundle = make_tiny("tiny-bert", kind="classifier", label_names=data.label_names)
    config = TrainConfig(
        max_steps=4,
        save_every=2,
        output_dir=str(tmp_path),
        progress=False,
        batch_size=8,
        max_length=16,
        learning_rate=5e-2,
        keep_last=5,
    )
    Trainer(bundle, "classify", data, config=config).fit()
    folders = list_checkpoints(tmp_path / "checkpoints")
    result = probe_layers(tmp_path, data, progress=False)
    assert result.checkpoints == ["step 2", "step 4"] and result.accuracy.shape == (2, 3)
    for row, folder in enumerate(folders):
        alone = probe_layers(folder, data, progress=False)
        np.testing.assert_array_equal(result.accuracy[row], alone.accuracy[0])
        np.testing.assert_array_equal(result.control_accuracy[row], alone.control_accuracy[0])
    assert not np.array_equal(result.accuracy[0], result.accuracy[1])  # so rows in the wrong order would show
    assert "at step 4" in repr(result)


def test_the_result_is_json_safe_and_its_repr_names_the_best_layer(tiny_bert, fake_features):
    result = probe_layers(tiny_bert, _pos_neg(30, 30), progress=False)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["accuracy"] == [[round(float(a), 4) for a in result.accuracy[0]]]
    assert data["selectivity"][0][1] == round(float(result.selectivity[0, 1]), 4)
    assert data["checkpoints"] == [tiny_bert.name] and data["data"] == "examples" and data["pooling"] == "mean"
    assert "best: layer 1, accuracy 1.000" in repr(result)


def test_a_call_too_big_for_its_memory_budget_fails_before_any_forward(tiny_bert, monkeypatch):
    def no_forward(*args, **kwargs):
        raise AssertionError("the model ran before the budget was checked")

    monkeypatch.setattr(tiny_bert.model.base_model, "forward", no_forward)
    with pytest.raises(MemoryBudgetError, match=r"Probing 3 rows of .* on 8,000 texts.*max_examples"):
        probe_layers(tiny_bert, _pos_neg(4000, 4000), max_examples=None, memory_mb=1, progress=False)


def _one_class():
    return LabelledData("one", ["a cat", "a dog"] * 10, [0] * 20, ["animal", "other"])


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda b, d: probe_layers(b, _one_class()), DataError, "at least two classes"),
        (lambda b, d: probe_layers(b, [("a cat", "x"), ("a dog", "x")]), DataError, "at least two classes"),
        (lambda b, d: probe_layers(b, _pos_neg(5, 5)), DataError, "at least 4 and 2 of each class"),
        (lambda b, d: probe_layers(b, [*_pos_neg(10, 10), (" ", "pos")]), DataError, r"example 20 .* is empty"),
        (lambda b, d: probe_layers(b, d, pooling="max"), ProbeError, "Unknown pooling 'max'"),
        (lambda b, d: probe_layers(b, d, control="random"), ProbeError, "Unknown control task 'random'"),
        (lambda b, d: probe_layers(b, d, test_share=1), ProbeError, "test_share must be a fraction"),
        (lambda b, d: probe_layers(b, d, test_share=0.0), ProbeError, "test_share must be a fraction"),
        (lambda b, d: probe_layers(b, d, max_examples=0), ProbeError, "max_examples must be a positive"),
        (lambda b, d: probe_layers(b, d, batch_size=0), ProbeError, "batch_size must be a positive"),
        (lambda b, d: probe_layers(42, d), ModelListError, "probe_layers takes a model bundle"),
        (lambda b, d: layer_features(b, ["a cat"], pooling="max"), ProbeError, "Unknown pooling"),
    ],
)
def test_bad_input_gets_one_sentence(tiny_bert, call, error, words):
    with pytest.raises(error, match=words) as caught:
        call(tiny_bert, _pos_neg(20, 20))
    assert str(caught.value).count(". ") == 0 and str(caught.value).endswith(".")


def test_a_folder_with_no_model_and_no_checkpoint_is_refused(tmp_path):
    with pytest.raises(ProbeError, match="holds no model and no checkpoint"):
        probe_layers(tmp_path, _pos_neg(20, 20), progress=False)


def test_a_checkpoint_out_of_range_is_refused(tiny_bert, fake_features):
    result = probe_layers(tiny_bert, _pos_neg(20, 20), progress=False)
    with pytest.raises(ProbeError, match="Checkpoint 1 is out of range: this result holds 1"):
        result.best_layer(1)


def test_a_model_without_hidden_states_is_refused(tiny_classifier):
    import dataclasses

    import torch

    exported = dataclasses.replace(tiny_classifier, model=torch.nn.Linear(4, 2))  # stands for an ONNX export's runner
    with pytest.raises(ProbeError, match="does not return: its model is a Linear, not a transformers PyTorch model"):
        probe_layers(exported, _pos_neg(20, 20), progress=False)
