"""Faults during training: nothing trained or saved is lost.

Out of memory (simulated), a full disk while saving, the process killed while a checkpoint is
being written, and Stop/Start 50 times in one process. Each test counts the faults it injects and
the checkpoints it reads back through the ``faults`` fixture; tests/reliability/conftest.py adds
them up in the session's summary.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from tests.fault_injection import nan_loss_from
from workbench.errors import CheckpointError, TrainingError
from workbench.training import TrainConfig, Trainer
from workbench.training.checkpoint import latest_checkpoint, list_checkpoints


def _config(tmp_path, **kw):
    base = dict(max_steps=8, batch_size=4, block_size=16, progress=False, output_dir=str(tmp_path), learning_rate=3e-3)
    base.update(kw)
    return TrainConfig(**base)


def test_out_of_memory_names_the_fix_and_the_run_resumes_with_it(tmp_path, monkeypatch, make_tiny, faults):
    from tests.conftest import TINY_TEXTS

    trainer = Trainer(make_tiny(), "masked-lm", TINY_TEXTS, config=_config(tmp_path))
    original = trainer.task.loss
    calls = {"n": 0}

    def loss(model, batch):
        calls["n"] += 1
        if calls["n"] == 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(model, batch)

    monkeypatch.setattr(trainer.task, "loss", loss)
    faults.injected += 1
    with pytest.raises(TrainingError, match=r"batch_size=2 with gradient_accumulation_steps=2") as caught:
        trainer.fit()
    assert "\n" not in str(caught.value) and "trainer.resume_from()" in str(caught.value)
    saved = latest_checkpoint(tmp_path / "checkpoints")
    assert saved is not None and saved.name == "step-0000003"
    faults.still_loads(saved, make_tiny().model)
    resumed = Trainer(
        make_tiny(), "masked-lm", TINY_TEXTS, config=_config(tmp_path, batch_size=2, gradient_accumulation_steps=2)
    )
    resumed.resume_from()
    resumed.fit()
    assert resumed.state.step == 8


def test_a_full_disk_while_saving_says_so_and_leaves_the_last_checkpoint_whole(
    tmp_path, monkeypatch, make_tiny, faults
):
    from tests.conftest import TINY_TEXTS
    from workbench.training import checkpoint

    trainer = Trainer(make_tiny(), "masked-lm", TINY_TEXTS, config=_config(tmp_path, max_steps=8, save_every=4))
    real_save = torch.save

    def full_disk(obj, path, *args, **kwargs):
        if "step-0000008" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    faults.injected += 1
    with pytest.raises(CheckpointError, match="free some disk space") as caught:
        trainer.fit()
    assert "\n" not in str(caught.value)
    folders = list_checkpoints(tmp_path / "checkpoints")
    assert [f.name for f in folders] == ["step-0000004"]
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]  # no half-written folder
    faults.still_loads(folders[0], make_tiny().model)  # the earlier checkpoint still loads


KILLED_RUN = r"""
import os, sys, time
sys.path.insert(0, {root!r})
os.environ["HF_HUB_OFFLINE"] = "1"
import workbench.training.checkpoint as checkpoint
from workbench.models import load_model
from workbench.training import TrainConfig, Trainer
from tests.conftest import TINY_SIZES, TINY_TEXTS

bundle = load_model("tiny-bert", corpus=TINY_TEXTS, **TINY_SIZES)
real = checkpoint._fsync_dir
def slow_fsync(folder):
    if "step-0000008" in str(folder):
        print("WRITING", flush=True)
        time.sleep(60)  # killed here, with the step-8 files half in place
    real(folder)
checkpoint._fsync_dir = slow_fsync
Trainer(bundle, "masked-lm", TINY_TEXTS, config=TrainConfig(max_steps=8, batch_size=4, block_size=16, save_every=4,
        progress=False, output_dir={out!r}, learning_rate=3e-3)).fit()
"""


def test_a_process_killed_while_writing_a_checkpoint_leaves_the_previous_one_loadable(tmp_path, make_tiny, faults):
    root = str(Path(__file__).resolve().parents[2])
    script = KILLED_RUN.format(root=root, out=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=root
    )
    faults.injected += 1
    try:
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline and "WRITING" not in line:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
        assert "WRITING" in line, "the run never reached the step-8 checkpoint"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    folders = list_checkpoints(tmp_path / "checkpoints")
    assert [f.name for f in folders] == ["step-0000004"]
    saved = faults.still_loads(folders[0], make_tiny().model)
    assert saved["state"]["step"] == 4


def test_stop_and_start_fifty_times_in_one_process_leaves_no_thread_behind(tmp_path, make_tiny, faults):
    from tests.conftest import TINY_TEXTS

    bundle = make_tiny()
    before = threading.active_count()
    for i in range(50):
        trainer = Trainer(bundle, "masked-lm", TINY_TEXTS, config=_config(tmp_path / str(i % 3), max_steps=10_000))
        job = trainer.start()
        job.stop()
        faults.injected += 1
        job.wait(timeout=30)
        assert trainer.state.status in ("stopped", "finished")
    deadline = time.monotonic() + 10
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before, [t.name for t in threading.enumerate()]


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, make_tiny, faults):
    from tests.conftest import TINY_TEXTS

    trainer = Trainer(make_tiny(), "masked-lm", TINY_TEXTS, config=_config(tmp_path, max_steps=20, save_every=2))
    nan_loss_from(trainer, 6)
    faults.injected += 1
    trainer.fit()
    assert trainer.state.status == "nan"
    folders = list_checkpoints(tmp_path / "checkpoints")
    assert folders and folders[-1].name == "step-0000004"
    saved = faults.still_loads(folders[-1], make_tiny().model)
    assert saved["state"]["step"] == 4
