"""DistributedTrainer over NCCL, where two CUDA devices are present."""

from __future__ import annotations

import pytest
import torch

from workbench.models import load_model
from workbench.training import DistributedTrainer, TrainConfig

pytestmark = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL needs two CUDA devices; fewer are here")


def test_two_gpus_train_to_the_same_weights_over_nccl(corpus, tmp_path):
    bundle = load_model("tiny-gpt", corpus=corpus, layers=2, hidden=64, heads=2, vocab_size=400, max_positions=64)
    config = TrainConfig(
        progress=False,
        block_size=32,
        batch_size=8,
        max_steps=20,
        precision="bf16",
        output_dir=str(tmp_path),
        device="cuda",
    )
    trainer = DistributedTrainer(bundle, "causal-lm", corpus, config=config, num_processes=2)
    history = trainer.fit()
    losses = history.losses()
    assert len(losses) == 20
    assert losses[-1] < losses[0]
