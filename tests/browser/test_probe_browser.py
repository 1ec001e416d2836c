"""The probe views in a real JupyterLab: typing updates the guesses, the slider changes the checkpoint."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

SETUP = """\
import tempfile
from workbench.models import load_model
from workbench.training import TrainConfig, Trainer
from workbench.explain import ProbeRecorder
from workbench.ui import MaskProbe, ProbeTimeline

texts = ["The cat sat on the mat and looked at the dog.", "To be, or not to be, that is the question.",
         "A dog ran in the park while the cat slept on the warm mat."] * 8
bundle = load_model("tiny-bert", corpus=texts, layers=2, hidden=32, heads=2, vocab_size=300, max_positions=64)
run = tempfile.mkdtemp()
recorder = ProbeRecorder([("the cat sat on the [MASK]", "mat")], every=3)
Trainer(bundle, "masked-lm", texts, callbacks=[recorder], config=TrainConfig(
    max_steps=6, batch_size=4, block_size=16, save_every=3, keep_last=5, progress=False, output_dir=run,
    learning_rate=5e-3)).fit()
probe = MaskProbe(run, "the cat sat on the [MASK]")
probe"""

TIMELINE = "ProbeTimeline(recorder)"

PROBE = ".jp-NotebookPanel:not(.lm-mod-hidden) .wb-probe"
TIMELINE_VIEW = ".jp-NotebookPanel:not(.lm-mod-hidden) .wb-timeline"


@pytest.fixture(scope="module")
def probe_notebook(module_lab):
    module_lab.write_notebook("probe.ipynb", [SETUP, TIMELINE])
    module_lab.open_notebook("probe.ipynb")
    module_lab.run_all()
    module_lab.wait_cell_done(0, timeout_ms=120_000)
    module_lab.wait_cell_done(1, timeout_ms=60_000)
    module_lab.raise_on_error(0)
    return module_lab


def test_the_probe_shows_bars_and_the_lens(probe_notebook):
    lab = probe_notebook
    lab.wait_for("s => document.querySelectorAll(s + ' .wb-probe-bar-row').length === 5", arg=PROBE, what="five bars")
    assert lab.page.locator(f"{PROBE} .wb-probe-cell").count() == 3 * 8  # 3 rows x 8 tokens
    assert lab.picture(PROBE, "mask-probe").stat().st_size > 5_000


def test_typing_into_the_probe_updates_the_bars(probe_notebook):
    lab = probe_notebook
    box = lab.page.locator(f"{PROBE} input.wb-probe-input")
    box.fill("the [MASK] sat on the mat")
    lab.wait_for(
        "s => document.querySelector(s + ' .wb-probe-heading').textContent.includes('position 2')",
        arg=PROBE,
        what="the mask at position 2",
    )
    box.fill("<b>no mask</b>")
    lab.wait_for(
        "s => document.querySelector(s + ' .wb-probe-status').textContent.includes('has no mask')",
        arg=PROBE,
        what="the sentence about the missing mask",
    )
    assert lab.page.locator(f"{PROBE} b").count() == 0
    box.fill("the cat sat on the [MASK]")
    lab.wait_for("s => document.querySelectorAll(s + ' .wb-probe-bar-row').length === 5", arg=PROBE, what="bars again")


def test_the_slider_changes_the_checkpoint_shown(probe_notebook):
    lab = probe_notebook
    lab.wait_for("s => document.querySelector(s).dataset.model === 'step 6'", arg=PROBE, what="the last checkpoint")
    slider = lab.page.locator(f"{PROBE} input.wb-probe-slider")
    slider.evaluate(
        "e => { e.value = '0'; e.dispatchEvent(new Event('input')); e.dispatchEvent(new Event('change')); }"
    )
    lab.wait_for("s => document.querySelector(s).dataset.model === 'step 3'", arg=PROBE, what="the first checkpoint")
    assert lab.page.locator(f"{PROBE} .wb-probe-checkpoint").inner_text() == "step 3"


def test_the_timeline_draws_the_recorded_steps(probe_notebook):
    lab = probe_notebook
    lab.wait_for(
        "s => document.querySelector(s) && document.querySelector(s).dataset.records === '2'",
        arg=TIMELINE_VIEW,
        what="two records",
    )
    assert lab.page.locator(f"{TIMELINE_VIEW} .wb-timeline-chart").first.get_attribute("data-points") == "2"
    assert lab.picture(TIMELINE_VIEW, "probe-timeline").stat().st_size > 3_000
