"""GPU checks: collected everywhere, run only where a CUDA device is present (``make test-gpu``)."""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device on this machine: the GPU checks run where one is lent")
    for item in items:
        if "tests/gpu/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(skip)


@pytest.fixture
def corpus() -> list[str]:
    """A few hundred distinct sentences: enough to train a small tokenizer and see a loss fall."""
    subjects = ["The cat", "A dog", "The king", "My friend", "The river", "A bird", "The queen", "Our ship"]
    verbs = ["sees", "follows", "loves", "fears", "finds", "leaves", "calls", "waits for"]
    objects = ["the moon", "a stranger", "the old house", "the sea", "a bright star", "the quiet town"]
    return [
        f"{s} {v} {o} at dawn number {i}."
        for i, (s, v, o) in enumerate((s, v, o) for s in subjects for v in verbs for o in objects)
    ]
