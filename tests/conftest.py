"""Shared test set-up: no model hub, quiet tokenizers, tiny corpora and tiny models.

Tiny models come from two kinds of fixture:

- ``tiny_bert``, ``tiny_gpt`` and ``tiny_classifier`` are built once per session and shared: use them
  only to read (explain calls, saving); a test that trains or changes a model must not take them.
- ``make_tiny(name, **options)`` builds a fresh model each call, for tests that train, compare two
  models, or need another seed, kind or corpus.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
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


# ----------------------------------------------------------------------------------- reliability reports
#
# Counted from the tests that ran: in any order, alone or under ``-k``. A test file that is a catalogue marks
# itself ``pytestmark = pytest.mark.catalogue("bad-input catalogue")``: each of its tests that ran is one case
# tried. A fault test takes the ``faults`` fixture and counts the faults it injected and the checkpoints it
# checked after them; the faults of a test that passed survived. The counts print in pytest's summary at the
# end of the session. They travel in the test reports' ``user_properties``, so they add up the same when
# pytest-xdist runs the tests in worker processes: the reports come back to the process that prints the
# summary, which loads this conftest (the one every run of ``tests`` loads first) but no folder's below it.

_CATALOGUES: pytest.StashKey[Counter[tuple[str, str]]] = pytest.StashKey()
_FAULTS: pytest.StashKey[Counter[str]] = pytest.StashKey()
_REPORTS: pytest.StashKey[dict[str, pytest.TestReport]] = pytest.StashKey()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "catalogue(title): each test of the file is a case of the named catalogue")
    config.stash[_CATALOGUES] = Counter()
    config.stash[_FAULTS] = Counter()


@dataclass
class FaultLog:
    """What one fault test did: the faults it injected and the checkpoints it found whole or lost after them."""

    injected: int = 0
    checked: int = 0
    lost: int = 0

    def still_loads(self, folder: Path, model: Any) -> dict:
        """Read the checkpoint ``folder`` into ``model`` and return its state; count it as lost if that fails."""
        from workbench.training.checkpoint import read_checkpoint

        self.checked += 1
        try:
            return read_checkpoint(folder, model=model)
        except Exception:
            self.lost += 1
            raise


@pytest.fixture
def faults(request: pytest.FixtureRequest) -> Generator[FaultLog, None, None]:
    """This test's fault counts, added to the session's report when it ends."""
    log = FaultLog()
    yield log
    passed = all(report.passed for report in request.node.stash.get(_REPORTS, {}).values())
    counts = {"injected": log.injected, "survived": log.injected if passed else 0, "checked": log.checked}
    # The teardown report, made after this runs, carries them to pytest_runtest_logreport.
    request.node.user_properties.append(("faults", {**counts, "lost": log.lost}))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report  # read by the faults fixture's teardown
    marker = item.get_closest_marker("catalogue")
    if marker is not None and (report.when == "call" or (report.when == "setup" and not report.passed)):
        report.user_properties = [*report.user_properties, ("catalogue", marker.args[0])]  # this report's own list
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count what a report carries: a catalogue case tried, or a fault test's counts (see ``faults``)."""
    config = _session_config
    if config is None:
        return
    for key, value in report.user_properties:
        if key == "catalogue":
            config.stash[_CATALOGUES][(value, report.outcome)] += 1
        elif key == "faults" and report.when == "teardown":
            config.stash[_FAULTS].update(value)


_session_config: pytest.Config | None = None


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    global _session_config  # logreport is given no config: the session's is the one counted into
    _session_config = session.config


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    catalogues = config.stash[_CATALOGUES]
    for title in sorted({title for title, _ in catalogues}):
        outcomes = {outcome: n for (name, outcome), n in catalogues.items() if name == title}
        detail = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
        terminalreporter.write_line(f"{title}: {sum(outcomes.values())} cases tried ({detail})")
    totals = config.stash[_FAULTS]
    if totals["injected"]:
        terminalreporter.write_line(
            f"faults injected {totals['injected']}, survived {totals['survived']}; "
            f"checkpoints checked after them {totals['checked']}, lost {totals['lost']}"
        )
