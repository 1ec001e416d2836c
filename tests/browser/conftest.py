"""Fixtures of the real-browser tests; what they do is in ``harness.py`` (a sibling module).

* ``jupyter_server`` (session): JupyterLab on 127.0.0.1, offline, isolated (:class:`harness.JupyterServer`).
* ``chromium`` (session): Debian's headless Chromium through Playwright (:func:`harness.launch_chromium`).
* ``lab`` (per test), ``module_lab`` (one page shared by a module's tests) and ``open_lab()``: a
  :class:`harness.LabPage`; ``open_notebook7()``: a :class:`harness.NotebookPage`, the same calls in
  Jupyter Notebook 7 (served by the same server). At the end of every test each page still open is screenshotted to
  ``tests/browser/artifacts/<test>.png``, and the test fails if a page sent a request off 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import HERE, JupyterServer, LabPage, OpenPages, finish_test, launch_chromium, save_module_end

# The pages open now, across fixtures of every scope: each test's end checks the shared ones too.
OPEN_PAGES = OpenPages()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/browser is a browser test, even one whose module forgot the mark."""
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """JupyterLab on 127.0.0.1, offline and quiet, isolated from the user's Jupyter set-up."""
    server = JupyterServer.start(tmp_path_factory.mktemp("jupyterlab"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright; a clear failure (not a skip) where it is missing."""
    with launch_chromium() as browser:
        yield browser


@pytest.fixture(scope="session")
def open_lab(chromium: Any, jupyter_server: JupyterServer) -> Callable[[], LabPage]:
    """A factory for LabPages (module-scoped fixtures use it to share one page between tests)."""
    return lambda: OPEN_PAGES.open(jupyter_server, chromium)


@pytest.fixture(scope="session")
def open_notebook7(chromium: Any, jupyter_server: JupyterServer) -> Callable[[], LabPage]:
    """A factory for Notebook 7 pages (:class:`harness.NotebookPage`) on the same server as JupyterLab's."""
    return lambda: OPEN_PAGES.open(jupyter_server, chromium, app="notebook")


@pytest.fixture(scope="module")
def module_lab(open_lab: Callable[[], LabPage], request: pytest.FixtureRequest) -> Iterator[LabPage]:
    """One JupyterLab page shared by the tests of a module (each still gets its screenshot and network check).

    Its last state is also saved as ``<module>.end.png``: the only picture when a module fixture fails.
    """
    lab_page = open_lab()
    yield lab_page
    try:
        save_module_end(lab_page, request.module.__name__)
    except Exception:  # a missing picture must not hide the test's own result
        pass
    finally:
        OPEN_PAGES.close(lab_page)


@pytest.fixture(scope="module")
def module_notebook7(open_notebook7: Callable[[], LabPage], request: pytest.FixtureRequest) -> Iterator[LabPage]:
    """One Notebook 7 page shared by the tests of a module, as ``module_lab`` is for JupyterLab."""
    page = open_notebook7()
    yield page
    try:
        save_module_end(page, f"{request.module.__name__}_notebook7")
    except Exception:  # a missing picture must not hide the test's own result
        pass
    finally:
        OPEN_PAGES.close(page)


@pytest.fixture
def lab(open_lab: Callable[[], LabPage], request: pytest.FixtureRequest) -> Iterator[LabPage]:
    """A fresh JupyterLab page for one test (screenshotted, checked, closed and its kernels shut down at the end)."""
    lab_page = open_lab()
    yield lab_page
    try:
        finish_test(request.node, [lab_page])
    finally:
        OPEN_PAGES.close(lab_page)


@pytest.fixture(autouse=True)
def _browser_artifacts(request: pytest.FixtureRequest) -> Iterator[None]:
    """At the end of each test, for the pages shared across tests (module-scoped): as ``lab`` does for its own."""
    yield
    if OPEN_PAGES.pages:
        finish_test(request.node, list(OPEN_PAGES.pages))
