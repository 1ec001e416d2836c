"""The compression view in a real JupyterLab: MiniLM against its int8 copy, drift per head, attributions, no script."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PAYLOAD = "<img src=x onerror=alert(1)>"
TEXT = f"A gripping, funny film {PAYLOAD} that never drags."

SETUP = f"""\
from workbench.models import load_model
from workbench.compress import compare_models, quantize
from workbench.ui import CompressionView
minilm = load_model("minilm", kind="classifier", label_names=["negative", "positive"])
report = compare_models(minilm, quantize(minilm), texts=[{TEXT!r}, "The plot was thin."], lengths=(16, 64), repeats=5)
CompressionView(report)"""

VIEW = ".jp-NotebookPanel:not(.lm-mod-hidden) .wb-compression"


@pytest.fixture(scope="module")
def compression_notebook(module_lab):
    return module_lab.run_view_notebook("compression.ipynb", SETUP)


def test_the_view_shows_the_deltas_a_head_map_and_both_rows(compression_notebook):
    lab = compression_notebook
    lab.wait_for(
        "s => document.querySelectorAll(s + ' .wb-comp-cell').length === 72", arg=VIEW, what="6 layers x 12 heads"
    )
    rows = lab.page.locator(f"{VIEW} .wb-comp-table tr").all_inner_texts()
    assert rows[1].startswith("weights (MB)") and "latency @64 tokens (ms)" in rows[3]
    assert lab.page.locator(f"{VIEW} .wb-comp-tokens").count() == 2
    assert lab.picture(VIEW, "compression").stat().st_size > 5_000


def test_hovering_a_head_names_it_with_its_drift(compression_notebook):
    lab = compression_notebook
    lab.page.locator(f"{VIEW} .wb-comp-cell[data-layer='3'][data-head='5']").hover()
    lab.wait_for(
        "s => [...document.querySelectorAll(s + ' .wb-comp-note')].some(n => "
        "n.textContent.startsWith('layer 3, head 5: '))",
        arg=VIEW,
        what="the status line on layer 3, head 5",
    )


def test_the_text_switch_shows_the_other_texts_rows(compression_notebook):
    lab = compression_notebook
    lab.page.locator(f"{VIEW} select.wb-comp-text").select_option("1")
    lab.wait_for(
        "s => document.querySelector(s + ' .wb-comp-tokens').textContent.includes('plot')",
        arg=VIEW,
        what="the second text's rows",
    )
    lab.page.locator(f"{VIEW} select.wb-comp-text").select_option("0")


def test_a_token_with_markup_shows_as_text_and_runs_nothing(compression_notebook):
    lab = compression_notebook
    lab.wait_for(
        "s => document.querySelector(s + ' .wb-comp-tokens').textContent.includes('gripping')",
        arg=VIEW,
        what="the first text's rows",
    )
    lab.assert_markup_shows_as_text(VIEW, ".wb-comp-tokens .wb-comp-token")
    assert lab.dialogs == []
