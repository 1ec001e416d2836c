"""The real-browser harness: a Jupyter server, Debian's headless Chromium, and a page that drives them.

``tests/browser/conftest.py`` turns these into fixtures; this module holds what they do.

* :class:`JupyterServer`: JupyterLab on 127.0.0.1 on a free port, token-protected, its root a fresh
  temporary folder, with every per-user Jupyter/IPython folder redirected there and everything that
  would phone home turned off (news, update checks, the PyPI extension manager). :meth:`JupyterServer.stop`
  ends it by its PID (terminate, then kill); its log is ``tests/browser/artifacts/jupyter-server.log``.
  The same server also serves Jupyter Notebook 7 (``/tree``, ``/notebooks/<path>``): the ``notebook``
  package (a dev dependency) enables its server extension in ``<venv>/etc/jupyter``, so one server
  start gives both front ends, and the same kernels.
* :func:`launch_chromium`: a Playwright browser on ``/usr/bin/chromium`` (never ``playwright install``).
  Missing Chromium is a test **failure** that says to run ``make browser-deps``.
* :class:`LabPage`: a fresh browser context whose every request to a host other than
  127.0.0.1/localhost is recorded and aborted (:class:`NetworkGuard`). :class:`NotebookPage` is the
  same in Notebook 7: another address and another kernel indicator, the same menus and cells. :func:`finish_test`
  screenshots each page still open to ``tests/browser/artifacts/<test>.png`` and fails the test
  if a page made such a request during it: the views must work with no CDN.
* Pictures a test takes of a view (:meth:`LabPage.picture`) go to ``tests/browser/artifacts/pictures/``;
  the README's own are taken from the tutorials by ``tests/browser/pictures.py`` (``make pictures``).

Running cells: :meth:`LabPage.run_all` clicks the menu *Run > Run All Cells* (the Lumino menu
item ``runmenu:run-all``) and :meth:`LabPage.run_cell` selects a cell by clicking its prompt
and clicks *Run > Run Selected Cell and Do not Advance* (``notebook:run-cell``) — the way a
person does it; keyboard shortcuts depend on focus and edit mode and proved less reliable.
:meth:`LabPage.interrupt_kernel` clicks *Kernel > Interrupt Kernel* (``kernelmenu:interrupt``).
A kernel counts as idle when the status bar's kernel item says "<kernel> | Idle" *and* the
notebook toolbar's execution indicator says ``data-status="idle"`` (the indicator alone says
idle before a kernel is even chosen; a Run All clicked then opens a "Select Kernel" dialog).
Notebook 7 has the same menus (the same Lumino command ids) but no status bar: there the kernel is
idle when the toolbar's kernel name is not "No Kernel" and its execution indicator says "Kernel
status: Idle" (it says "Initializing" until the kernel is up) with ``data-status="idle"``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ARTIFACTS = HERE / "artifacts"  # ignored by git: screenshots, console logs, the server's log
CHROMIUM = Path(os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on show
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
VIEWPORT = {"width": 1400, "height": 1100}
SERVER_START_TIMEOUT_S = 90
NOTEBOOK_OPEN_TIMEOUT_MS = 60_000
KERNEL_IDLE_TIMEOUT_MS = 60_000
SAVE_TIMEOUT_S = 30

# JupyterLab user settings written before the server starts: no "get notified about news?" toast,
# no update check, nothing that asks for attention over the page under test.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


def pictures_folder() -> Path:
    """Where :meth:`LabPage.picture` saves: the artifacts, never the tracked ``docs/images``."""
    return ARTIFACTS / "pictures"


# ----------------------------------------------------------------------------- the server


@dataclass
class JupyterServer:
    """A running JupyterLab, and the REST calls a test makes to it."""

    url: str  # http://127.0.0.1:PORT (no trailing slash)
    token: str
    root: Path  # the server's root_dir: notebooks written here, kernels start here
    process: subprocess.Popen[bytes]
    log_path: Path
    runtime_dir: Path
    log: IO[str] | None = None  # the open log file, closed by stop()

    @classmethod
    def start(cls, base: Path) -> JupyterServer:
        """JupyterLab on 127.0.0.1, offline and quiet, its folders under ``base``; fails the test if it won't answer."""
        root = base / "root"
        home = {name: base / name for name in ("config", "data", "runtime", "settings", "workspaces", "ipython")}
        for path in (root, *home.values()):
            path.mkdir(parents=True, exist_ok=True)
        for rel, settings in LAB_SETTINGS.items():
            target = home["settings"] / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(settings))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        log_path = ARTIFACTS / "jupyter-server.log"

        token = secrets.token_hex(24)
        port = _free_port()
        env = dict(os.environ)
        env.update(
            {
                "HF_HUB_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false",
                "PYTHONUNBUFFERED": "1",
                # shap's numba kernels run uncompiled, as in the test process (tests/conftest.py): the
                # attribution view's kernel would spend about 12 s compiling them for one short text
                "NUMBA_DISABLE_JIT": "1",
                # The user's own Jupyter and IPython set-up (kernels, settings, startup files) stays out.
                "JUPYTER_CONFIG_DIR": str(home["config"]),
                "JUPYTER_DATA_DIR": str(home["data"]),
                "JUPYTER_RUNTIME_DIR": str(home["runtime"]),
                "IPYTHONDIR": str(home["ipython"]),
                "JUPYTER_PLATFORM_DIRS": "0",
            }
        )
        env.pop("JUPYTER_PATH", None)
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--allow-root",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.terminals_enabled=False",
            # Offline: no news feed, no update check, an extension manager that never asks PyPI.
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            f"--LabApp.user_settings_dir={home['settings']}",
            f"--LabApp.workspaces_dir={home['workspaces']}",
            # Notebook 7 (the same server, when the notebook package is installed) reads the same settings.
            f"--JupyterNotebookApp.user_settings_dir={home['settings']}",
            f"--JupyterNotebookApp.workspaces_dir={home['workspaces']}",
        ]
        log = open(log_path, "w")  # noqa: SIM115 - closed by stop()
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        server = cls(
            url=f"http://127.0.0.1:{port}",
            token=token,
            root=root,
            process=process,
            log_path=log_path,
            runtime_dir=home["runtime"],
            log=log,
        )
        try:
            server.wait_until_up()
        except BaseException:
            server.stop()
            raise
        return server

    def wait_until_up(self) -> None:
        """Poll ``/api/status`` until the server answers; fail the test, with its log, if it exits or times out."""
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                pytest.fail(
                    f"JupyterLab exited with code {self.process.returncode} while starting; "
                    f"log ({self.log_path}):\n{self.log_tail()}",
                    pytrace=False,
                )
            try:
                self.api("GET", "/api/status", timeout=2)
                return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"JupyterLab did not answer at {self.url} within {SERVER_START_TIMEOUT_S} s; "
                        f"log ({self.log_path}):\n{self.log_tail()}",
                        pytrace=False,
                    )
                time.sleep(0.2)  # polling a server that is starting: there is no event to wait on

    def stop(self) -> None:
        """Shut the kernels down through the server, then stop it by its PID (terminate, then kill)."""
        if self.process.poll() is None:
            try:
                for session in self.sessions():
                    self.api("DELETE", f"/api/sessions/{session['id']}", timeout=30)
            except (urllib.error.URLError, OSError):
                pass
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        # A kernel runs in a session of its own: if the server died before shutting it down, end it here.
        for pid in _stray_kernels(self.runtime_dir):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.log is not None:
            self.log.close()

    def api(self, method: str, path: str, body: Any = None, timeout: float = 10) -> Any:
        """Call the Jupyter REST API (``path`` like ``/api/sessions``); the decoded JSON, or None."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def lab_url(self, notebook: str, workspace: str) -> str:
        """The address that opens ``notebook`` in JupyterLab, in a workspace of that name."""
        # A workspace of its own per notebook: JupyterLab would otherwise restore the notebooks
        # an earlier test left open in the shared default workspace (and render their widgets).
        return f"{self.url}/lab/workspaces/{quote(workspace)}/tree/{quote(notebook)}?token={self.token}"

    def notebook7_url(self, notebook: str) -> str:
        """The address that opens ``notebook`` in Jupyter Notebook 7 (one notebook per page, no workspaces)."""
        return f"{self.url}/notebooks/{quote(notebook)}?token={self.token}"

    def serves_notebook7(self) -> bool:
        """Whether this server serves Notebook 7's ``/tree`` (the ``notebook`` package, >= 7, is installed)."""
        request = urllib.request.Request(f"{self.url}/tree", headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def saved_notebook(self, notebook: str) -> dict[str, Any]:
        """The notebook as the server holds it on disk now (nbformat JSON, outputs included)."""
        return self.api("GET", f"/api/contents/{quote(notebook)}?content=1", timeout=30)["content"]

    def sessions(self) -> list[dict[str, Any]]:
        """The server's sessions (one per open notebook with a kernel)."""
        return self.api("GET", "/api/sessions") or []

    def session_for(self, notebook: str) -> dict[str, Any] | None:
        """The session of ``notebook`` (a path in the server's root), or None."""
        return next((s for s in self.sessions() if s.get("path") == notebook), None)

    def shutdown_session(self, notebook: str) -> None:
        """Shut the notebook's kernel down (gracefully, through the server)."""
        session = self.session_for(notebook)
        if session is not None:
            with suppress(urllib.error.URLError, OSError):
                self.api("DELETE", f"/api/sessions/{session['id']}", timeout=30)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's log (for a failure message)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stray_kernels(runtime_dir: Path) -> list[int]:
    """PIDs of kernels this server started that are still alive (their command line names our runtime dir)."""
    pids = []
    marker = str(runtime_dir).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline and b"ipykernel" in cmdline:
            pids.append(int(proc.name))
    return pids


# ---------------------------------------------------------------------------- the browser


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright, closed on exit; a clear failure (not a skip) where it is missing."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium is missing ({CHROMIUM} not found): run `make browser-deps` "
            "(Debian's chromium package; never `playwright install`).",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "The playwright Python package is missing: run `make setup` (it installs the dev extra).", pytrace=False
        )
    profile = tempfile.mkdtemp(prefix="wb-chromium-")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, env={**os.environ, "HOME": profile}
            )
            try:
                yield browser
            finally:
                browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class NetworkGuard:
    """Aborts and records every request (and websocket) to a host other than the local server."""

    external: list[str] = field(default_factory=list)
    local_requests: int = 0
    checked: int = 0  # how many entries of ``external`` earlier tests already reported

    def route(self, route: Any) -> None:
        """Playwright route handler: let a local request through, record and abort any other."""
        url = route.request.url
        if is_local(url):
            self.local_requests += 1
            route.continue_()
        else:
            self.external.append(url)
            route.abort("blockedbyclient")

    def websocket(self, ws: Any) -> None:
        """Playwright websocket handler: record a socket to another host."""
        if not is_local(ws.url):
            self.external.append(ws.url)

    def forget(self, url: str) -> None:
        """Drop a request a test made on purpose (a check that the guard works), so teardown passes."""
        for i in range(len(self.external) - 1, self.checked - 1, -1):
            if self.external[i] == url:
                del self.external[i]

    def new_since_check(self) -> list[str]:
        """The external requests made since the last call."""
        new = self.external[self.checked :]
        self.checked = len(self.external)
        return new


def is_local(url: str) -> bool:
    """Whether ``url`` stays on this machine (the local server, or a data:/blob: URL the page made)."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "chrome", "chrome-extension", "devtools"):
        return True
    return (parts.hostname or "") in LOCAL_HOSTS or f"[{parts.hostname}]" in LOCAL_HOSTS


class LabPage:
    """One browser context with JupyterLab in it, and what a test does there."""

    app = "JupyterLab"

    def __init__(self, server: JupyterServer, browser: Any) -> None:
        self.server = server
        self.context = browser.new_context(viewport=VIEWPORT)
        self.guard = NetworkGuard()
        self.context.route("**/*", self.guard.route)
        self.page = self.context.new_page()
        self.page.on("websocket", self.guard.websocket)
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.console_saved = 0  # console lines already written to an earlier test's artifacts
        self.notebooks: list[str] = []
        self.current = ""  # the notebook open now
        self.focus: str | None = None  # a selector scrolled into view before the end-of-test screenshot
        self.dialogs: list[str] = []  # the messages of the dialogs a view notebook fired (none, if it is safe)

    # -- files and notebooks

    def write_notebook(self, name: str, cells: list[str]) -> Path:
        """Write a notebook of code cells into the server's root; return its path."""
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        path = self.server.root / name
        nbformat.write(nb, path)
        return path

    def open_notebook(self, name: str) -> None:
        """Open ``name`` (in the server's root) in JupyterLab and wait until its kernel is idle."""
        self.notebooks.append(name)
        self.current = name
        self.page.goto(self.address(name), wait_until="domcontentloaded")
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=NOTEBOOK_OPEN_TIMEOUT_MS)
        self.wait_kernel_idle()

    def address(self, name: str) -> str:
        """The address that opens notebook ``name`` in this page's app."""
        return self.server.lab_url(name, workspace=Path(name).stem)

    def run_view_notebook(self, name: str, setup: str, timeout_ms: int = 180_000) -> LabPage:
        """Write a one-cell notebook that ends in a view, open it, run it, and keep the dialogs it fires."""
        self.write_notebook(name, [setup])
        self.open_notebook(name)
        dialogs: list[str] = []
        self.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        self.run_all()
        self.wait_cell_done(0, timeout_ms=timeout_ms)
        self.raise_on_error(0)
        self.dialogs = dialogs
        return self

    def wait_kernel_idle(self, timeout_ms: int = KERNEL_IDLE_TIMEOUT_MS) -> None:
        """Wait until the current notebook's kernel is connected and idle (no cell runs, none queued).

        The toolbar's execution indicator alone is not enough: it says "idle" before any kernel
        is chosen ("No Kernel | Initializing" in the status bar), and a Run All clicked then
        opens a "Select Kernel" dialog. So the status bar's kernel item must say "<kernel> | Idle" too.
        """
        self.wait_for(
            """(name) => {
              const item = document.querySelector(`.jp-StatusBar-TextItem[title="Change kernel for ${name}"]`);
              const text = item ? item.textContent.trim() : "";
              const indicator = document.querySelector(
                ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator");
              return !text.startsWith("No Kernel") && / \\| Idle$/.test(text)
                && indicator !== null && indicator.dataset.status === "idle";
            }""",
            arg=Path(self.current).name,
            timeout_ms=timeout_ms,
            what=f"the kernel of {self.current} to be idle",
        )

    # -- menus and cells

    def menu(self, menu: str, command: str) -> None:
        """Click a top menu (its label, e.g. "Run") and then its item (Lumino command id)."""
        self.page.bring_to_front()  # a page behind another draws no frames: its menus and saves stall
        self.page.click(f".lm-MenuBar-item:has-text('{menu}')")
        self.page.click(f".lm-Menu-item[data-command='{command}']")

    def run_all(self) -> None:
        """Run > Run All Cells."""
        self.menu("Run", "runmenu:run-all")

    def cell(self, index: int) -> Any:
        """The locator of cell ``index`` of the notebook on show."""
        return self.page.locator(f"{PANEL} .jp-Notebook .jp-Cell").nth(index)

    def run_cell(self, index: int) -> None:
        """Select cell ``index`` (by its prompt, in command mode) and Run > Run Selected Cell and Do not Advance."""
        cell = self.cell(index)
        cell.locator(".jp-InputPrompt").click()
        cell.and_(self.page.locator(".jp-mod-selected")).wait_for(state="attached", timeout=5000)
        self.menu("Run", "notebook:run-cell")

    def interrupt_kernel(self) -> None:
        """Kernel > Interrupt Kernel."""
        self.menu("Kernel", "kernelmenu:interrupt")

    def save(self, timeout_s: float = SAVE_TIMEOUT_S) -> dict[str, Any]:
        """File > Save; wait for the server's answer to the save; return the notebook as the server holds it now.

        Wait through Playwright, never ``time.sleep``: every request of the page goes through the
        network guard's route handler, which runs only while Playwright is called, so a test that
        sleeps holds the save back.
        """
        with self.page.expect_response(
            lambda response: response.request.method == "PUT" and "/api/contents/" in response.url,
            timeout=timeout_s * 1000,
        ) as answer:
            self.menu("File", "docmanager:save")
        assert answer.value.ok, f"saving {self.current} failed: HTTP {answer.value.status}"
        return self.server.saved_notebook(self.current)

    def wait_cell_done(self, index: int, timeout_ms: int = 60_000, after: int = 0) -> int:
        """Wait until cell ``index`` shows an execution count (``[3]:``) above ``after``; return it.

        ``after`` is for a notebook opened with the outputs of an earlier run (or another page) in it.
        Fails at once, with the traceback, if the cell raised.
        """
        count = self.wait_for(
            """([panel, index, after]) => {
              const cell = document.querySelectorAll(panel + " .jp-Notebook .jp-Cell")[index];
              if (!cell) return null;
              const m = /\\[(\\d+)\\]/.exec(cell.querySelector(".jp-InputPrompt").textContent);
              return m && Number(m[1]) > after ? Number(m[1]) : null;
            }""",
            arg=[PANEL, index, after],
            timeout_ms=timeout_ms,
            what=f"cell {index} to finish",
        )
        self.raise_on_error(index)
        return int(count)

    def raise_on_error(self, index: int) -> None:
        """Fail with the cell's traceback if it raised."""
        stderr = self.cell(index).locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        text = "\n".join(stderr.all_inner_texts())
        if "Traceback (most recent call last)" in text:
            raise AssertionError(f"cell {index} of {self.current} raised:\n{text[-3000:]}")

    def cell_output_text(self, index: int) -> str:
        """The text of every output of cell ``index``, joined by newlines."""
        outputs = self.cell(index).locator(".jp-OutputArea-output")
        return "\n".join(outputs.all_inner_texts())

    def wait_output_matching(self, index: int, pattern: str, timeout_ms: int = 30_000) -> re.Match[str]:
        """Wait until cell ``index``'s output matches the regular expression ``pattern``; return the match."""
        locator = self.cell(index).locator(".jp-OutputArea-output", has_text=re.compile(pattern))
        locator.first.wait_for(state="attached", timeout=timeout_ms)
        match = re.search(pattern, self.cell_output_text(index))
        assert match, f"cell {index} output no longer matches {pattern!r}"
        return match

    # -- waiting on the DOM

    def wait_for(self, expression: str, arg: Any = None, timeout_ms: int = 30_000, what: str = "") -> Any:
        """page.wait_for_function with a readable failure: ``what`` says what was awaited."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        self.page.bring_to_front()  # "raf" polling needs frames: only the page in front draws them
        try:
            return self.page.wait_for_function(expression, arg=arg, timeout=timeout_ms, polling="raf").json_value()
        except PlaywrightTimeout:
            raise AssertionError(f"timed out after {timeout_ms} ms waiting for {what or expression}") from None

    def attr(self, selector: str, name: str) -> str | None:
        """Attribute ``name`` of the first element at ``selector``."""
        return self.page.locator(selector).first.get_attribute(name)

    def assert_markup_shows_as_text(self, view: str, tokens: str) -> None:
        """The ``<img src=x onerror=...>`` payload's pieces show as token text in ``view``; no element, no dialog."""
        texts = self.page.locator(f"{view} {tokens}").all_inner_texts()
        assert "<" in texts and "im" in texts and ">" in texts
        assert self.page.locator(f"{view} img").count() == 0
        assert getattr(self, "dialogs", []) == []

    def picture(self, selector: str, name: str) -> Path:
        """Save the element at ``selector`` as ``<name>.png`` in :func:`pictures_folder`; return the path."""
        folder = pictures_folder()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        element = self.page.locator(selector).first
        element.scroll_into_view_if_needed(timeout=5000)
        element.screenshot(path=str(path), animations="disabled")
        return path

    # -- the end

    def screenshot(self, path: Path) -> None:
        """The whole page as a PNG at ``path``, scrolled to :attr:`focus` first when a test set one."""
        if self.focus:
            with suppress(Exception):  # a screenshot of whatever is there is still worth having
                self.page.locator(self.focus).first.scroll_into_view_if_needed(timeout=2000)
        self.page.screenshot(path=str(path))

    def close(self) -> None:
        """Shut down the kernels of the notebooks this page opened, then close its browser context."""
        for name in self.notebooks:
            self.server.shutdown_session(name)
        self.context.close()


class NotebookPage(LabPage):
    """One browser context with Jupyter Notebook 7 in it: :class:`LabPage`'s calls, Notebook 7's address and kernel.

    Notebook 7 is built from JupyterLab's pieces: the notebook panel, cells, output areas and the
    Lumino menus (``runmenu:run-all``, ``kernelmenu:interrupt``, ``docmanager:save``) are the same;
    it opens one notebook per page at ``/notebooks/<path>`` and shows the kernel in its toolbar.
    """

    app = "Notebook 7"

    def address(self, name: str) -> str:
        """The address that opens notebook ``name`` in Notebook 7."""
        return self.server.notebook7_url(name)

    def wait_kernel_idle(self, timeout_ms: int = KERNEL_IDLE_TIMEOUT_MS) -> None:
        """Wait until the notebook's kernel is chosen, connected and idle (no cell runs, none queued)."""
        self.wait_for(
            """() => {
              const name = document.querySelector(".jp-NotebookPanel-toolbar .jp-KernelName");
              const indicator = document.querySelector(
                ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator");
              const said = indicator ? indicator.textContent : "";
              return name !== null && !name.textContent.includes("No Kernel") && indicator !== null
                && indicator.dataset.status === "idle" && /Kernel status: Idle/.test(said);
            }""",
            timeout_ms=timeout_ms,
            what=f"the kernel of {self.current} to be idle in Notebook 7",
        )


def notebook7_page(server: JupyterServer, browser: Any) -> NotebookPage:
    """A new :class:`NotebookPage`; fails the test, saying what to install, where the server has no Notebook 7."""
    if not server.serves_notebook7():
        pytest.fail(
            "Jupyter Notebook 7 is missing (the server has no /tree): install the dev extra "
            "(`make setup`; it holds notebook>=7).",
            pytrace=False,
        )
    return NotebookPage(server, browser)


class OpenPages:
    """The pages open now (JupyterLab or Notebook 7): each test's end screenshots and checks the shared ones too."""

    def __init__(self) -> None:
        self.pages: list[LabPage] = []

    def open(self, server: JupyterServer, browser: Any, app: str = "lab") -> LabPage:
        """A new page, ``app="lab"`` (JupyterLab) or ``"notebook"`` (Notebook 7), remembered until :meth:`close`."""
        lab_page = notebook7_page(server, browser) if app == "notebook" else LabPage(server, browser)
        self.pages.append(lab_page)
        return lab_page

    def close(self, lab_page: LabPage) -> None:
        """Forget ``lab_page`` and close it (its kernels shut down)."""
        if lab_page in self.pages:
            self.pages.remove(lab_page)
        lab_page.close()


def finish_test(node: pytest.Item, pages: list[LabPage]) -> None:
    """A screenshot (``<test>.png``; ``<test>-2.png`` for a second page) and the console log of each page,
    and a failure for any request off 127.0.0.1."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", node.name)
    used: list[str] = node.__dict__.setdefault("_browser_artifact_names", [])
    leaks: list[str] = []
    for lab_page in pages:
        name = stem if not used else f"{stem}-{len(used) + 1}"
        used.append(name)
        try:
            lab_page.screenshot(ARTIFACTS / f"{name}.png")
        except Exception as error:
            (ARTIFACTS / f"{name}.screenshot-error.txt").write_text(repr(error))
        (ARTIFACTS / f"{name}.console.txt").write_text("\n".join(lab_page.console[lab_page.console_saved :]) + "\n")
        lab_page.console_saved = len(lab_page.console)
        leaks += lab_page.guard.new_since_check()
    if leaks:
        pytest.fail(
            "the page sent requests off 127.0.0.1 (aborted; a view must not need a CDN or any network):\n  "
            + "\n  ".join(leaks),
            pytrace=False,
        )


def save_module_end(lab_page: LabPage, module_name: str) -> None:
    """A module-wide page's last state as ``<module>.end.png``, and its console log.

    The only picture there is when a module's fixture fails.
    """
    stem = module_name.rpartition(".")[2]
    lab_page.screenshot(ARTIFACTS / f"{stem}.end.png")
    (ARTIFACTS / f"{stem}.end.console.txt").write_text("\n".join(lab_page.console) + "\n")
