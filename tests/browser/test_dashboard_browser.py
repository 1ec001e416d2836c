"""The training dashboard in a real JupyterLab 4 in headless Chromium: live, stoppable, offline.

One page and one training notebook are shared by the tests that watch a run (rendering, growing
curves, another cell meanwhile, then the Stop button, in that order); the kernel-interrupt test
opens a notebook of its own in the same page. Models are tiny: the whole module takes about a
minute on two cores.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness import LabPage

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

TEXTS = [
    "The cat sat on the mat and looked at the dog.",
    "A dog ran in the park while the cat slept on the warm mat.",
    "To be, or not to be, that is the question.",
    "All the world's a stage, and all the men and women merely players.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
]


def setup_cell(output_dir: str) -> str:
    """The notebook cell a person writes: a tiny model, an endless run, the dashboard (as documented)."""
    return f"""\
from workbench.models import load_model
from workbench.training import TrainConfig, Trainer
from workbench.ui import TrainingDashboard

texts = {TEXTS!r} * 20
bundle = load_model("tiny-bert", corpus=texts, layers=2, hidden=32, heads=2, vocab_size=300, max_positions=64)
trainer = Trainer(bundle, "masked-lm", texts, config=TrainConfig(
    max_steps=100000, batch_size=4, block_size=16, log_every=1, progress=False,
    output_dir={output_dir!r}))
dashboard = TrainingDashboard()
dashboard.run(trainer)"""


PRINT_CELL = 'print(f"cell ran at step {trainer.state.step} while the run was {trainer.state.status}")'
PRINTED = r"cell ran at step (\d+) while the run was (\w+)"

# The first dashboard on the page: its status, step, message and the loss chart's plotted points.
DASHBOARD_STATE = """() => {
  const d = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .wb-dashboard');
  if (!d) return null;
  const chart = d.querySelector('.wb-loss svg.wb-chart');
  return {status: d.dataset.status, step: Number(d.dataset.step), message: d.querySelector('.wb-message').textContent,
          points: chart ? Number(chart.dataset.points) : -1};
}"""
DASHBOARD = ".jp-NotebookPanel:not(.lm-mod-hidden) .wb-dashboard"
PANEL_CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell"


def state(lab: LabPage) -> dict:
    return lab.page.evaluate(DASHBOARD_STATE)


def wait_state(lab: LabPage, condition: str, timeout_ms: int = 30_000, what: str = "") -> dict:
    """Wait until ``condition`` (a JS expression over ``s``, the dashboard state) holds; return the state."""
    return lab.wait_for(
        f"() => {{ const s = ({DASHBOARD_STATE})(); return s && ({condition}) ? s : null; }}",
        timeout_ms=timeout_ms,
        what=what or condition,
    )


def checkpoint(root: Path, output_dir: str, step: int, timeout_s: float = 10) -> Path:
    """The checkpoint folder for ``step``, once complete (polls the disk: it is written by the kernel)."""
    folder = root / output_dir / "checkpoints" / f"step-{step:07d}"
    deadline = time.monotonic() + timeout_s
    while not (folder / "trainer_state.json").is_file():
        if time.monotonic() > deadline:
            present = (
                sorted(p.name for p in (root / output_dir / "checkpoints").glob("*"))
                if (root / output_dir / "checkpoints").is_dir()
                else "no checkpoints folder"
            )
            raise AssertionError(f"no complete checkpoint {folder} after {timeout_s} s (present: {present})")
        time.sleep(0.1)
    return folder


# ------------------------------------------------------------------------- shared fixtures


@pytest.fixture(scope="module")
def training(module_lab: LabPage) -> LabPage:
    """The training notebook, open and run (Run > Run All Cells), its dashboard running."""
    lab = module_lab
    lab.write_notebook("dashboard.ipynb", [setup_cell("run-dashboard"), PRINT_CELL])
    lab.open_notebook("dashboard.ipynb")
    lab.run_all()
    lab.focus = DASHBOARD
    lab.wait_cell_done(0, timeout_ms=90_000)
    wait_state(lab, "s.status === 'running'", what="the dashboard to say running")
    return lab


# ---------------------------------------------------------------------------------- tests


def test_the_dashboard_renders_and_runs(training: LabPage) -> None:
    lab = training
    s = wait_state(lab, "s.status === 'running' && s.step >= 1", what="a running dashboard past step 1")
    assert re.fullmatch(r"running \(step \d+ of 100000\)", s["message"]), s["message"]
    dashboard = lab.page.locator(DASHBOARD).first
    assert "masked-lm" in dashboard.locator(".wb-title").inner_text()
    assert dashboard.locator(".wb-badge").inner_text() == "running"
    assert re.fullmatch(r"\d+ / 100000", dashboard.locator("[data-stat=step] .wb-stat-value").inner_text())
    # While running: Pause, Stop and Save work; Start does not (the run has started).
    for command, enabled in (("start", False), ("pause", True), ("stop", True), ("save", True)):
        button = dashboard.locator(f"button[data-command={command}]")
        assert button.is_enabled() == enabled, f"the {command} button should be {'en' if enabled else 'dis'}abled"
    # The view raised nothing (a failed render shows up as a console error, not as a missing element).
    errors = [line for line in lab.console if line.startswith(("error:", "pageerror:"))]
    assert not errors, errors
    # Three charts, each an SVG of its own with at least one drawn line.
    for box in ("wb-loss", "wb-lr", "wb-tps"):
        lab.wait_for(
            f"() => document.querySelector('{DASHBOARD} .{box} svg.wb-chart path.wb-line') !== null",
            what=f"a line in the {box} chart",
        )
    # The cell after the run's cell (Run All ran both) has run and printed: the kernel was free
    # while the run went on (the run never ends by itself, and it is still running).
    assert lab.wait_cell_done(1) == 2
    lab.wait_output_matching(1, PRINTED)
    assert state(lab)["status"] == "running"


def test_the_dashboard_is_displayed_once(training: LabPage) -> None:
    """A cell ending in ``dashboard.run(trainer)`` shows one dashboard: run() returns None, nothing is echoed."""
    lab = training
    # Idle after both cells ran: the status message comes on the same channel after every output.
    lab.wait_cell_done(1)
    lab.wait_kernel_idle()
    cell = lab.cell(0)
    echoed = cell.locator(".jp-OutputArea-executeResult")
    assert echoed.count() == 0, f"the cell echoed a value: {echoed.all_inner_texts()[:1]}"
    assert cell.locator(".wb-dashboard").count() == 1


# The dashboard's chart boxes and drawn charts, and whether anything sticks out of it.
DASHBOARD_GEOMETRY = f"""() => {{
  const d = document.querySelector('{DASHBOARD}');
  const box = (sel) => {{ const r = d.querySelector(sel).getBoundingClientRect();
                          return {{left: r.left, right: r.right, top: r.top, bottom: r.bottom}}; }};
  const charts = ['wb-loss', 'wb-lr', 'wb-tps'].map((c) => ({{box: d.querySelector('.' + c).clientWidth,
    drawn: Number(d.querySelector('.' + c + ' svg').getAttribute('width'))}}));
  return {{narrow: d.classList.contains('wb-narrow'), width: d.clientWidth, overflow: d.scrollWidth - d.clientWidth,
           loss: box('.wb-loss'), lr: box('.wb-lr'), tps: box('.wb-tps'), charts}};
}}"""


def test_the_dashboard_fits_a_narrow_share_of_the_page(training: LabPage) -> None:
    """Squeezed to 560 px (an HBox share): the side charts go under the loss chart, redrawn to their boxes."""
    lab = training
    wide = lab.page.evaluate(DASHBOARD_GEOMETRY)
    assert not wide["narrow"] and wide["lr"]["left"] >= wide["loss"]["right"], wide  # side by side
    lab.page.evaluate(f"() => {{ document.querySelector('{DASHBOARD}').parentElement.style.width = '560px'; }}")
    try:
        lab.wait_for(
            f"() => {{ const g = ({DASHBOARD_GEOMETRY})(); return g.narrow && g.charts.every("
            "(c) => Math.abs(c.drawn - c.box) <= 1) ? g : null; }",
            what="the narrow layout, its charts redrawn at their boxes' widths",
        )
        narrow = lab.page.evaluate(DASHBOARD_GEOMETRY)
        assert narrow["width"] <= 560 and narrow["overflow"] == 0, narrow
        assert narrow["lr"]["top"] >= narrow["loss"]["bottom"] and narrow["tps"]["top"] >= narrow["loss"]["bottom"]
        assert narrow["lr"]["right"] <= narrow["tps"]["left"], narrow  # the two side charts share the row below
    finally:
        lab.page.evaluate(f"() => {{ document.querySelector('{DASHBOARD}').parentElement.style.width = ''; }}")
    lab.wait_for(f"() => !({DASHBOARD_GEOMETRY})().narrow", what="the wide layout again")
    errors = [line for line in lab.console if line.startswith(("error:", "pageerror:"))]
    assert not errors, errors  # no ResizeObserver loop either


def test_plotted_points_grow_while_training(training: LabPage) -> None:
    lab = training
    first = wait_state(lab, "s.status === 'running' && s.points >= 1", what="a first plotted point")
    later = wait_state(
        lab,
        f"s.points >= {first['points'] + 3}",
        timeout_ms=30_000,
        what=f"more than {first['points'] + 2} plotted points",
    )
    assert later["status"] == "running"
    assert later["step"] > first["step"]
    # log_every=1: one plotted point per step (the step may be one ahead: a deferred push can read
    # the history just before the loop logs its next step); the raw-loss line has that many vertices.
    snapshot = lab.page.evaluate(f"""() => {{
      const d = document.querySelector('{DASHBOARD}');
      const chart = d.querySelector('.wb-loss svg.wb-chart');
      const raw = chart.querySelector('path.wb-line');
      return {{step: Number(d.dataset.step), points: Number(chart.dataset.points),
               vertices: (raw.getAttribute('d').match(/[ML]/g) || []).length}};
    }}""")
    assert snapshot["step"] - 1 <= snapshot["points"] <= snapshot["step"], snapshot
    assert snapshot["vertices"] == snapshot["points"], snapshot


def test_another_cell_runs_and_prints_while_training_goes_on(training: LabPage) -> None:
    lab = training
    before = wait_state(lab, "s.status === 'running' && s.step >= 2", what="a run past step 2")
    count = lab.wait_cell_done(1)
    lab.run_cell(1)
    assert lab.wait_cell_done(1, timeout_ms=30_000) > count
    match = lab.wait_output_matching(1, PRINTED)
    step, status = int(match.group(1)), match.group(2)
    assert status == "running"
    assert step >= before["step"], (step, before)
    # The run goes on after the cell has run and printed.
    wait_state(lab, f"s.status === 'running' && s.step > {step + 1}", what=f"the step to pass {step + 1}")


def test_the_stop_button_stops_within_two_seconds_and_saves(training: LabPage, jupyter_server) -> None:
    lab = training
    wait_state(lab, "s.status === 'running' && s.step >= 3", what="a run past step 3")
    stop = lab.page.locator(DASHBOARD).first.locator("button[data-command=stop]")
    assert stop.is_enabled()
    started = time.monotonic()
    stop.click()
    s = wait_state(lab, "s.status === 'stopped'", timeout_ms=2_000, what="status 'stopped' within 2 s of Stop")
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"Stop took {elapsed:.2f} s"
    match = re.fullmatch(r"stopped at step (\d+)", s["message"])
    assert match, s["message"]
    step = int(match.group(1))
    assert step == s["step"] >= 3
    folder = checkpoint(jupyter_server.root, "run-dashboard", step)
    saved = json.loads((folder / "trainer_state.json").read_text())
    assert saved["state"]["step"] == step and saved["state"]["status"] == "stopped"
    # Stopped means stopped: buttons off, every step plotted, and the static snapshot shown below.
    dashboard = lab.page.locator(DASHBOARD).first
    for command in ("pause", "stop", "save"):
        assert dashboard.locator(f"button[data-command={command}]").is_disabled(), command
    final = wait_state(lab, f"s.points === {step}", timeout_ms=5_000, what=f"{step} plotted points")
    assert final["step"] == step
    snapshot = lab.cell(0).locator("svg.wb-snapshot")
    snapshot.wait_for(state="attached", timeout=10_000)
    assert f"stopped at step {step}" in snapshot.text_content()
    # The static copy is kept for readers without a kernel; here the live view says the same, and hides it
    # with its output's row (no empty row left), and only that row: the dashboard's own row still shows.
    assert snapshot.is_hidden()
    rows = lab.page.evaluate(
        f"""() => [...document.querySelectorAll('{PANEL_CELLS} .jp-OutputArea-child')].filter(
          (row) => row.querySelector('.wb-static-snapshot, .wb-dashboard')).map(
          (row) => [!!row.querySelector('.wb-dashboard'), getComputedStyle(row).display !== 'none'])"""
    )
    assert [True, True] in rows and [False, False] in rows and [False, True] not in rows, rows
    assert lab.picture(DASHBOARD, "dashboard").stat().st_size > 5_000
    # Where no live view renders (its rule is absent), the copy shows.
    hiders = "document.querySelectorAll('style[data-wb-hides]')"
    lab.page.evaluate(f"() => {hiders}.forEach((s) => {{ s.sheet.disabled = true; }})")
    try:
        assert snapshot.is_visible()
    finally:
        lab.page.evaluate(f"() => {hiders}.forEach((s) => {{ s.sheet.disabled = false; }})")


def test_a_kernel_interrupt_between_cells_stops_the_run_and_saves(module_lab: LabPage, jupyter_server) -> None:
    lab = module_lab
    lab.write_notebook("interrupt.ipynb", [setup_cell("run-interrupt"), PRINT_CELL])
    lab.open_notebook("interrupt.ipynb")
    lab.focus = DASHBOARD
    lab.run_cell(0)
    lab.wait_cell_done(0, timeout_ms=90_000)
    wait_state(lab, "s.status === 'running' && s.step >= 2", what="a run past step 2")
    # No cell runs now: the interrupt reaches the kernel between cells.
    lab.wait_kernel_idle(timeout_ms=5_000)
    lab.interrupt_kernel()
    s = wait_state(lab, "s.status === 'stopped'", timeout_ms=15_000, what="status 'stopped' after the interrupt")
    match = re.fullmatch(r"stopped at step (\d+)", s["message"])
    assert match, s["message"]
    step = int(match.group(1))
    assert step == s["step"] >= 2
    folder = checkpoint(jupyter_server.root, "run-interrupt", step)
    assert json.loads((folder / "trainer_state.json").read_text())["state"]["step"] == step
    # The kernel lived through it and agrees.
    lab.run_cell(1)
    match = lab.wait_output_matching(1, PRINTED)
    assert (int(match.group(1)), match.group(2)) == (step, "stopped")


def test_no_request_leaves_127_0_0_1(training: LabPage) -> None:
    """JupyterLab, the widget manager and the dashboard's own module all came from the local server."""
    lab = training
    assert lab.guard.external == [], lab.guard.external
    assert lab.guard.local_requests > 20, "the guard saw hardly any requests: is it routing at all?"
    # The guard itself works: a request to a CDN is seen and aborted.
    url = "https://cdn.jsdelivr.net/npm/anywidget/+esm"
    outcome = lab.page.evaluate("(url) => fetch(url).then(() => 'loaded', () => 'blocked')", url)
    assert outcome == "blocked"
    assert url in lab.guard.external
    lab.guard.forget(url)


def test_a_run_in_two_processes_is_live_and_stop_ends_both(module_lab: LabPage, jupyter_server) -> None:
    """DistributedTrainer from a cell: the main process's events reach the dashboard; its Stop ends every process."""
    lab = module_lab
    setup = f"""\
from workbench.models import load_model
from workbench.training import DistributedTrainer, TrainConfig
from workbench.ui import TrainingDashboard

texts = {TEXTS!r} * 20
bundle = load_model("tiny-gpt", corpus=texts, layers=2, hidden=32, heads=2, vocab_size=300, max_positions=64)
run = DistributedTrainer(bundle, "causal-lm", texts, num_processes=2, config=TrainConfig(
    max_steps=100000, batch_size=4, block_size=16, log_every=1, progress=False, output_dir="run-two"))
dashboard = TrainingDashboard()
dashboard.run(run)"""
    check = (
        "import psutil\n"
        "alive = [c for c in psutil.Process().children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE]\n"
        "print(f'{run.state.message}; {len(alive)} processes left; heard from {sorted({r for _, r in run.events})}')"
    )
    lab.write_notebook("two-processes.ipynb", [setup, check])
    lab.open_notebook("two-processes.ipynb")
    lab.focus = DASHBOARD
    lab.run_cell(0)
    lab.wait_cell_done(0, timeout_ms=90_000)
    first = wait_state(lab, "s.status === 'running' && s.points >= 2", timeout_ms=60_000, what="a live curve")
    precision = lab.page.locator(DASHBOARD).first.locator("[data-stat=precision] .wb-stat-value").inner_text()
    assert precision.endswith("cpu x 2 processes"), precision
    wait_state(lab, f"s.points >= {first['points'] + 3}", what="the curve to grow")
    lab.page.locator(DASHBOARD).first.locator("button[data-command=stop]").click()
    s = wait_state(lab, "s.status === 'stopped'", timeout_ms=15_000, what="status 'stopped' after Stop")
    step = int(re.fullmatch(r"stopped at step (\d+)", s["message"]).group(1))
    folder = checkpoint(jupyter_server.root, "run-two", step)
    assert sorted(p.name for p in (folder / "accelerate").iterdir()) == [
        "optimizer.bin",
        "random_states_0.pkl",
        "random_states_1.pkl",
    ]
    lab.run_cell(1)
    match = lab.wait_output_matching(1, r"stopped at step (\d+); (\d+) processes left; heard from \[(.*)\]")
    assert match.groups() == (str(step), "0", "0")
