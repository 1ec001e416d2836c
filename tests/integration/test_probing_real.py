"""Probing MiniLM's layers for sentiment on the movie snippets, with a shuffled control task."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.explain.probing import probe_layers
from workbench.models import load_model

pytestmark = pytest.mark.assets


def test_minilm_sentiment_is_readable_from_its_layers_but_not_from_the_cls_embedding():
    result = probe_layers(load_model("minilm"), "movie-snippets", pooling="cls", max_examples=600, progress=False)
    assert result.accuracy.shape == (1, 7) and (result.train_examples, result.test_examples) == (450, 150)
    # Before the first layer, [CLS] is the same vector in every text: the probe can only guess one class.
    assert result.accuracy[0, 0] == pytest.approx(result.majority)
    # Every layer reads it: 0.63 to 0.65 here against a majority of 0.51 (0.69 to 0.74 with 2,000 snippets,
    # up to 0.79 with mean pooling); 0.08 leaves 7 of the 150 test texts of margin.
    assert result.accuracy[0, 1:].min() > result.majority + 0.08
    # Shuffled labels: chance is about 0.5, and 150 test texts give a standard error of 0.04; 0.12 is three.
    assert np.all(np.abs(result.control_accuracy - 0.5) <= 0.12)
    assert result.selectivity[0, result.best_layer()] > 0.1
