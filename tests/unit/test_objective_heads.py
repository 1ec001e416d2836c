"""The objectives' own heads travel with their bundle: saved beside the weights, loaded back, checked."""

from __future__ import annotations

import pytest
import torch

from workbench.errors import ConfigError, ModelLoadError
from workbench.models import load_model
from workbench.models.objective_heads import HEADS_FILE, PairHead, ReplacedTokenHead, make_head, write_heads
from workbench.training import TrainConfig
from workbench.training.tasks import make_task


def test_heads_saved_with_a_bundle_come_back_with_the_same_weights(tmp_path, make_tiny):
    bundle = make_tiny("tiny-bert", kind="encoder")
    hidden = bundle.config.hidden_size
    bundle.heads = {
        "next-sentence": make_head("next-sentence", hidden),
        "replaced-token": make_head("replaced-token", hidden),
    }
    states = torch.randn(3, 5, hidden)
    before = {name: head(states) for name, head in bundle.heads.items()}
    loaded = load_model(bundle.save(tmp_path / "saved"))
    assert sorted(loaded.heads) == ["next-sentence", "replaced-token"]
    assert isinstance(loaded.heads["next-sentence"], PairHead)
    assert isinstance(loaded.heads["replaced-token"], ReplacedTokenHead)
    for name, head in loaded.heads.items():
        assert torch.equal(head(states), before[name])
    assert loaded.heads["next-sentence"](states).shape == (3, 2)
    assert loaded.heads["replaced-token"](states).shape == (3, 5)
    assert loaded.to_dict()["objective_heads"] == ["next-sentence", "replaced-token"]


def test_a_model_loaded_as_another_kind_leaves_the_heads_behind(tmp_path, make_tiny):
    bundle = make_tiny("tiny-bert", kind="encoder")
    bundle.heads = {"replaced-token": make_head("replaced-token", bundle.config.hidden_size)}
    folder = bundle.save(tmp_path / "saved")
    classifier = load_model(folder, kind="classifier", label_names=["no", "yes"])
    assert classifier.heads == {} and classifier.kind == "classifier"


def test_a_bundle_without_heads_writes_no_heads_file(tmp_path, make_tiny):
    folder = make_tiny("tiny-bert").save(tmp_path / "plain")
    assert not (folder / HEADS_FILE).exists()
    assert load_model(folder).heads == {}


def test_a_head_of_another_width_is_refused_in_one_sentence(tmp_path, make_tiny):
    bundle = make_tiny("tiny-bert", kind="encoder")
    folder = bundle.save(tmp_path / "saved")
    write_heads(folder, {"next-sentence": make_head("next-sentence", bundle.config.hidden_size * 2)})
    with pytest.raises(ModelLoadError, match="saved from another model"):
        load_model(folder)


def test_a_teacher_belongs_to_the_distill_task_only(make_tiny):
    bundle = make_tiny("tiny-bert")
    with pytest.raises(ConfigError, match="for the 'distill' task only"):
        make_task("masked-lm", bundle, TrainConfig(), teacher=bundle)
    with pytest.raises(ConfigError, match="learns from a teacher"):
        make_task("distill", bundle, TrainConfig())


@pytest.mark.parametrize("value", [0, -1.0])
def test_a_temperature_of_zero_or_less_is_refused(value):
    with pytest.raises(ConfigError, match="temperature must be above zero"):
        TrainConfig(temperature=value)
