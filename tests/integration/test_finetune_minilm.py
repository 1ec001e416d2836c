"""A short run of the fine-tuning example: MiniLM with a fresh head on the movie snippets."""

from __future__ import annotations

import pytest

from workbench.data import load_labelled
from workbench.models import load_model
from workbench.training import TrainConfig, Trainer

pytestmark = pytest.mark.assets


def test_minilm_classifier_loss_falls_on_movie_snippets():
    data = load_labelled("movie-snippets")
    train, val = data.split(validation=0.05, seed=0)
    bundle = load_model("minilm", kind="classifier", label_names=data.label_names)
    config = TrainConfig(
        max_steps=40, batch_size=16, learning_rate=1e-4, log_every=5, max_length=64, progress=False, eval_batches=8
    )
    trainer = Trainer(bundle, "classify", train, eval_data=val, config=config)
    losses = trainer.fit().losses()
    assert sum(losses[-3:]) / 3 < sum(losses[:2]) / 2 - 0.05
    assert trainer.history.eval[-1]["eval_accuracy"] > 0.6
