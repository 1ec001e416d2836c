"""Shared test set-up: no model hub, quiet tokenizers, and tiny corpora."""

from __future__ import annotations

import os

# Set before transformers is imported anywhere: a failed hub call burns ~50 s in retries.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

TINY_TEXTS = [
    "The cat sat on the mat and looked at the dog.",
    "A dog ran in the park while the cat slept on the warm mat.",
    "Shall I compare thee to a summer's day? Thou art more lovely and more temperate.",
    "To be, or not to be, that is the question.",
    "All the world's a stage, and all the men and women merely players.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
] * 4


@pytest.fixture
def tiny_texts() -> list[str]:
    return list(TINY_TEXTS)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """A fresh, empty asset cache for tests that must not touch the real one."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("WORKBENCH_CACHE", str(cache))
    return cache
