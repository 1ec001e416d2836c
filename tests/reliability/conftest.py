"""The reliability reports, counted from the tests that ran: in any order, alone or under ``-k``.

A test file that is a catalogue marks itself ``pytestmark = pytest.mark.catalogue("bad-input catalogue")``:
each of its tests that ran is one case tried. A fault test takes the ``faults`` fixture and counts the
faults it injected and the checkpoints it checked after them; the faults of a test that passed survived.
The counts print in pytest's summary at the end of the session.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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
    totals = request.config.stash[_FAULTS]
    totals.update(injected=log.injected, survived=log.injected if passed else 0, checked=log.checked, lost=log.lost)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report  # read by the faults fixture's teardown
    marker = item.get_closest_marker("catalogue")
    if marker is not None and (report.when == "call" or (report.when == "setup" and not report.passed)):
        item.config.stash[_CATALOGUES][(marker.args[0], report.outcome)] += 1
    return report


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
