"""The layer-curves view's standalone page in a real Chromium, offline: the points and lines it draws,
the log-scale switch, the checkpoint chosen from the legend, and the hover line with a markup row name."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.explain.lens_quality import LensQualityResult
from workbench.explain.probing_result import ProbeLayersResult
from workbench.ui.layer_curves import LayerCurves

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

PAYLOAD = "<img src=x onerror=alert(1)>"
ROWS = ["embeddings", "layer 1", "layer 2", "layer 3", "layer 4"]


def _open(chromium, view: LayerCurves, path):
    """The view's exported page in an offline context; returns (context, page, dialogs, errors)."""
    view.to_html(path)
    context = chromium.new_context(offline=True)
    page = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    return context, page, dialogs, errors


def _count(page, selector: str) -> int:
    return page.locator(selector).count()


def test_the_lens_curves_draw_a_point_per_row_and_hover_shows_both_lenses(chromium, tmp_path):
    result = LensQualityResult(
        "tiny-gpt", "tuned lens (step 200)", ROWS,
        np.array([4.0, 3.0, 2.0, 1.0, 0.0]), np.array([1.5, 3.5, 0.75, 0.25, 0.0]),
        np.array([900.0, 300.0, 80.0, 30.0, 12.0]), np.array([120.0, 400.0, 40.0, 20.0, 12.0]), 640, 20,
    )  # fmt: skip
    context, page, dialogs, errors = _open(chromium, LayerCurves(result), tmp_path / "lens.html")
    page.wait_for_function("() => document.querySelectorAll('.wb-curves-point').length > 0", timeout=10_000)
    kl, perplexity = "svg[data-panel='kl']", "svg[data-panel='perplexity']"
    assert _count(page, f"{kl} .wb-curves-line") == 2 and _count(page, f"{perplexity} .wb-curves-line") == 2
    assert _count(page, f"{kl} .wb-curves-point") == 8  # on a log scale the output row's KL of 0 is left out
    assert _count(page, f"{perplexity} .wb-curves-point") == 10
    assert page.locator(".wb-curves-caption").inner_text() == "tuned lens lower KL at 3 of 4 layers"
    page.locator(f"{kl} .wb-curves-point[data-row='2'][data-series='1']").hover()
    page.wait_for_function("() => document.querySelector('.wb-curves-status').dataset.row === '2'", timeout=5_000)
    assert page.locator(".wb-curves-status").inner_text() == (
        "layer 2 · KL to the model's output: logit lens 2.00, tuned lens (step 200) 0.750"
        " · perplexity: logit lens 80.0, tuned lens (step 200) 40.0"
    )
    page.locator(".wb-curves-log input").click()
    page.wait_for_function(
        "() => document.querySelector(\"svg[data-panel='kl']\").dataset.scale === 'linear'", timeout=5_000
    )
    assert _count(page, f"{kl} .wb-curves-point") == 10
    assert dialogs == [] and errors == []
    context.close()


def test_the_probe_curves_draw_a_line_per_checkpoint_and_the_chosen_checkpoints_control(chromium, tmp_path):
    accuracy = np.array([[0.5, 0.6, 0.7, 0.7, 0.6], [0.55, 0.7, 0.8, 0.9, 0.85], [0.6, 0.75, 0.9, 0.95, 0.9]])
    control = np.full((3, 5), 0.5) + np.arange(3)[:, None] * 0.01  # (checkpoints, rows)
    rows = ["embeddings", PAYLOAD, "layer 2", "layer 3", "layer 4"]
    result = ProbeLayersResult(
        "minilm", "movie-snippets", "mean", "shuffle", rows, ["step 50", "step 100", "step 150"],
        accuracy, control, 0.52, 300, 100, ["negative", "positive"],
    )  # fmt: skip
    context, page, dialogs, errors = _open(chromium, LayerCurves(result), tmp_path / "probe.html")
    page.wait_for_function("() => document.querySelectorAll('.wb-curves-point').length > 0", timeout=10_000)
    assert _count(page, ".wb-curves-line[data-role='accuracy']") == 3
    assert _count(page, ".wb-curves-line[data-role='control']") == 1 and _count(page, ".wb-curves-baseline") == 1
    assert _count(page, ".wb-curves-point") == 4 * 5
    assert page.locator(".wb-curves-line[data-role='control']").get_attribute("data-series") == "5"  # the latest's
    page.locator(".wb-curves-key.wb-curves-choosable").first.click()  # step 50
    page.wait_for_function(
        "() => document.querySelector(\".wb-curves-line[data-role='control']\").dataset.series === '3'", timeout=5_000
    )
    page.locator(".wb-curves-point[data-row='1'][data-series='0']").hover()
    page.wait_for_function("() => document.querySelector('.wb-curves-status').dataset.row === '1'", timeout=5_000)
    status = page.locator(".wb-curves-status").inner_text()
    assert status.startswith(f"{PAYLOAD} · held-out accuracy: accuracy · step 50 0.600, accuracy · step 100 0.700")
    assert status.endswith("control (shuffle) · step 50 0.500, selectivity · step 50 0.100")
    assert page.locator("#view img").count() == 0 and dialogs == [] and errors == []
    context.close()
