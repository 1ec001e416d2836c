"""What a text or a file could smuggle in: pickled weights, remote code, paths out of the cache."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from workbench.errors import AssetError, ModelLoadError
from workbench.models import load_model

PACKAGE = Path(__file__).resolve().parents[2] / "workbench"


def test_every_torch_load_in_the_package_reads_weights_only():
    calls = []
    for path in PACKAGE.rglob("*.py"):
        for line in path.read_text().splitlines():
            if "torch.load(" in line and not line.strip().startswith("#") and "torch.load(weights_only" not in line:
                calls.append((path.name, line.strip()))
    assert calls, "the checkpoint code reads optimizer and RNG state with torch.load"
    assert all("weights_only=True" in line for _, line in calls), calls


def test_remote_code_is_off_unless_asked_for():
    assert inspect.signature(load_model).parameters["trust_remote_code"].default is False


def test_a_folder_with_pickled_weights_only_is_refused_with_a_sentence(tmp_path):
    from tests.conftest import TINY_TEXTS

    bundle = load_model("tiny-bert", corpus=TINY_TEXTS, layers=2, hidden=32, heads=2, vocab_size=300, max_positions=64)
    folder = bundle.save(tmp_path / "model")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pickle that can run code") as caught:
        load_model(str(folder))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["../minilm", "/etc/passwd", "minilm/../../x", "..", "minilm\x00"])
def test_asset_names_cannot_reach_outside_the_registry(name, empty_cache):
    from workbench.assets import asset_path, fetch

    with pytest.raises(AssetError):
        fetch(name)
    with pytest.raises(AssetError):
        asset_path(name)
    assert not any(empty_cache.parent.glob("passwd*"))


@pytest.mark.parametrize("name", ["../step-0000001", "step-1", "step-0000001/../../x", "/tmp"])
def test_only_step_folders_are_read_as_checkpoints(tmp_path, name):
    from workbench.errors import CheckpointError
    from workbench.training.checkpoint import read_checkpoint

    with pytest.raises(CheckpointError, match="pick a step-NNNNNNN folder"):
        read_checkpoint(tmp_path / name, model=None)
    assert re.fullmatch(r"step-\d{7}", "step-0000001")
