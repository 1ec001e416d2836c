"""What a text or a file could smuggle in: pickled weights, remote code, paths out of the cache."""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from workbench.errors import AssetError, CheckpointError, ModelLoadError
from workbench.models import load_model
from workbench.training.checkpoint import (
    checkpoint_name,
    checkpoint_step,
    latest_checkpoint,
    list_checkpoints,
    read_checkpoint,
)

if TYPE_CHECKING:
    from workbench.models import ModelBundle

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


def test_a_folder_with_pickled_weights_only_is_refused_with_a_sentence(tmp_path: Path, tiny_bert: ModelBundle):
    folder = tiny_bert.save(tmp_path / "model")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pickle that can run code") as caught:
        load_model(str(folder))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["../minilm", "/etc/passwd", "minilm/../../x", "..", "minilm\x00"])
def test_asset_names_cannot_reach_outside_the_registry(name: str, empty_cache: Path):
    from workbench.assets import asset_path, fetch

    with pytest.raises(AssetError):
        fetch(name)
    with pytest.raises(AssetError):
        asset_path(name)
    assert not any(empty_cache.parent.glob("passwd*"))


@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory: pytest.TempPathFactory, make_tiny: Callable[..., ModelBundle]) -> Path:
    """A complete checkpoint, written by a one-step run."""
    from tests.conftest import TINY_TEXTS
    from workbench.training import TrainConfig, Trainer

    out = tmp_path_factory.mktemp("run")
    config = TrainConfig(max_steps=1, batch_size=4, block_size=16, progress=False, output_dir=str(out))
    Trainer(make_tiny("tiny-bert"), "masked-lm", TINY_TEXTS, config=config).fit()
    return out / "checkpoints" / checkpoint_name(1)


@pytest.mark.parametrize("step", [0, 1, 200, 9_999_999])
def test_a_checkpoint_name_is_read_back_as_its_step(step: int):
    assert checkpoint_step(Path("run") / "checkpoints" / checkpoint_name(step)) == step


def test_a_saved_checkpoint_is_listed_and_read_under_the_name_it_was_saved_with(
    saved_checkpoint: Path, make_tiny: Callable[..., ModelBundle]
):
    assert checkpoint_step(saved_checkpoint) == 1
    assert list_checkpoints(saved_checkpoint.parent) == [saved_checkpoint]
    state = read_checkpoint(saved_checkpoint, model=make_tiny("tiny-bert").model, restore_rng=False)
    assert state["state"]["step"] == 1


@pytest.mark.parametrize(
    "name",
    [
        "step-1",  # not seven digits
        "step-00000001",  # eight
        "step-0000001.old",
        "step-0000001 ",
        " step-0000001",
        ".step-0000001.partial-k2j4",  # how a checkpoint is named while it is being written
        "backup",
        "step-\u0660\u0660\u0660\u0660\u0660\u0660\u0661",  # Arabic-Indic digits: \d takes them; steps are ASCII
        "step-000000\uff11",  # a full-width 1
    ],
)
def test_only_step_folders_are_read_as_checkpoints(
    saved_checkpoint: Path, tmp_path: Path, name: str, make_tiny: Callable[..., ModelBundle]
):
    # The folder holds every file of a complete checkpoint: only its name can make it be refused.
    root = tmp_path / "checkpoints"
    folder = shutil.copytree(saved_checkpoint, root / name)
    with pytest.raises(CheckpointError, match="pick a step-NNNNNNN folder"):
        read_checkpoint(folder, model=make_tiny("tiny-bert").model, restore_rng=False)
    assert list_checkpoints(root) == [] and latest_checkpoint(root) is None
