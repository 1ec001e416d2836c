"""Shared test set-up: no model hub, quiet tokenizers, tiny corpora and tiny models.

Tiny models come from two kinds of fixture:

- ``tiny_bert``, ``tiny_gpt`` and ``tiny_classifier`` are built once per session and shared: use them
  only to read (explain calls, saving); a test that trains or changes a model must not take them.
- ``make_tiny(name, **options)`` builds a fresh model each call, for tests that train, compare two
  models, or need another seed, kind or corpus.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

# Set before transformers is imported anywhere: a failed hub call burns ~50 s in retries.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

try:  # set before shap is imported: numba reads it when a function is decorated
    import numba

    # shap's numba kernels compile on first use in each process, once per argument type: about 20 s of one
    # core over the suite. On the tests' short texts they run as fast as plain Python, so here they stay plain
    # Python (the same code, uncompiled). `make test` also sets NUMBA_DISABLE_JIT=1 for the tutorials' kernels.
    numba.config.DISABLE_JIT = True
except ImportError:  # shap (and numba with it) is missing: the tests that need it say so
    pass

if TYPE_CHECKING:
    from pathlib import Path

    from workbench.models import ModelBundle

TINY_TEXTS = [
    "The cat sat on the mat and looked at the dog.",
    "A dog ran in the park while the cat slept on the warm mat.",
    "Shall I compare thee to a summer's day? Thou art more lovely and more temperate.",
    "To be, or not to be, that is the question.",
    "All the world's a stage, and all the men and women merely players.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
] * 4

# The size of every tiny model: small enough that building one takes ~50 ms after the first import.
TINY_SIZES = {"layers": 2, "hidden": 32, "heads": 2, "vocab_size": 300, "max_positions": 64}


@pytest.fixture
def tiny_texts() -> list[str]:
    return list(TINY_TEXTS)


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty asset cache for tests that must not touch the real one."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("WORKBENCH_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def make_tiny() -> Callable[..., ModelBundle]:
    """A factory of fresh tiny models trained on ``TINY_TEXTS``'s tokenizer, at ``TINY_SIZES``.

    ``make_tiny("tiny-gpt", seed=3)`` is ``load_model("tiny-gpt", corpus=TINY_TEXTS, seed=3, **TINY_SIZES)``;
    any keyword (``kind``, ``label_names``, ``seed``, ``corpus``, a size) overrides the default.
    """

    def make(name: str = "tiny-bert", **options: Any) -> ModelBundle:
        from workbench.models import load_model

        return load_model(name, **{"corpus": TINY_TEXTS, **TINY_SIZES, **options})

    return make


@pytest.fixture(scope="session")
def tiny_bert(make_tiny: Callable[..., ModelBundle]) -> ModelBundle:
    """A tiny masked LM shared by the whole session: read it, never train or change it."""
    return make_tiny("tiny-bert")


@pytest.fixture(scope="session")
def tiny_gpt(make_tiny: Callable[..., ModelBundle]) -> ModelBundle:
    """A tiny causal LM shared by the whole session: read it, never train or change it."""
    return make_tiny("tiny-gpt")


@pytest.fixture(scope="session")
def tiny_classifier(make_tiny: Callable[..., ModelBundle]) -> ModelBundle:
    """A tiny two-label classifier ("negative", "positive") shared by the whole session: read it only."""
    return make_tiny("tiny-bert", kind="classifier", label_names=["negative", "positive"])


def _sharpened(bundle: ModelBundle, factor: float = 10.0) -> ModelBundle:
    """A copy of a tiny model with its weight matrices × ``factor``: its layers and heads move the output
    clearly (a fresh tiny model gives every token about 1/300, and a head changes that by about 1e-7: too
    little to tell a bug from rounding)."""
    import copy
    import dataclasses

    import torch

    model = copy.deepcopy(bundle.model)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(factor)
    return dataclasses.replace(bundle, model=model)


@pytest.fixture(scope="session")
def sharpen() -> Callable[..., ModelBundle]:
    """``sharpen(bundle)``: a copy of a tiny model with its weight matrices ×10 (see ``_sharpened``)."""
    return _sharpened
