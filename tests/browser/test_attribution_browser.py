"""The attribution view in a real JupyterLab: three methods, values on hover, targets, no script from tokens."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PAYLOAD = "<img src=x onerror=alert(1)>"
TEXT = f"A gripping, funny film {PAYLOAD} that never drags."

SETUP = f"""\
from workbench.models import load_model
from workbench.explain import attribute_many
from workbench.ui import AttributionView
minilm = load_model("minilm", kind="classifier", label_names=["negative", "positive"])
results = [r for target in ("negative", "positive")
           for r in attribute_many(minilm, [{TEXT!r}], target, method=["shap", "integrated_gradients", "occlusion"],
                                   max_evals=120, steps=16, progress=False)]
AttributionView(results)"""

VIEW = ".jp-NotebookPanel:not(.lm-mod-hidden) .wb-attribution"


@pytest.fixture(scope="module")
def attribution_notebook(module_lab):
    return module_lab.run_view_notebook("attributions.ipynb", SETUP)


def test_the_view_renders_a_coloured_row_per_method(attribution_notebook):
    lab = attribution_notebook
    lab.wait_for(
        "s => document.querySelectorAll(s + ' .wb-attr-row[data-method]').length === 3",
        arg=VIEW,
        what="three method rows",
    )
    methods = lab.page.locator(f"{VIEW} .wb-attr-row[data-method]")
    assert [methods.nth(i).get_attribute("data-method") for i in range(3)] == [
        "shap",
        "integrated_gradients",
        "occlusion",
    ]
    coloured = lab.page.locator(f"{VIEW} .wb-attr-row[data-method='occlusion'] .wb-attr-token[style*='background']")
    assert coloured.count() >= 8
    assert lab.page.locator(f"{VIEW} .wb-attr-metric[data-metric='comprehensiveness']").count() == 3
    assert lab.picture(VIEW, "attributions").stat().st_size > 5_000


def test_hovering_a_token_shows_its_value(attribution_notebook):
    lab = attribution_notebook
    token = lab.page.locator(f"{VIEW} .wb-attr-row[data-method='shap'] .wb-attr-token[data-index='2']")
    token.hover()
    lab.wait_for(
        "s => document.querySelector(s + ' .wb-attr-status').dataset.token === '2'",
        arg=VIEW,
        what="the status line on token 2",
    )
    status = lab.page.locator(f"{VIEW} .wb-attr-status").inner_text()
    value = float(token.get_attribute("data-score"))
    shown = float(status.rsplit("·", 1)[1])
    assert "shap" in status and shown == pytest.approx(value, rel=0.01)


def test_a_token_with_markup_shows_as_text_and_runs_nothing(attribution_notebook):
    lab = attribution_notebook
    lab.assert_markup_shows_as_text(VIEW, ".wb-attr-row[data-method='shap'] .wb-attr-token")
    assert lab.dialogs == []


def test_the_target_switch_shows_the_other_labels_rows(attribution_notebook):
    lab = attribution_notebook
    select = lab.page.locator(f"{VIEW} select.wb-attr-target")
    before = lab.page.locator(f"{VIEW} .wb-attr-probability").inner_text()
    select.select_option("positive")
    lab.wait_for(
        "s => document.querySelector(s + ' .wb-attr-probability').textContent.startsWith('p(positive)')",
        arg=VIEW,
        what="the positive label's rows",
    )
    assert before.startswith("p(negative)")


def test_the_standalone_export_opens_offline_with_no_kernel(chromium, tmp_path):
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from workbench.explain import attribute_many
    from workbench.models import load_model
    from workbench.ui import AttributionView

    minilm = load_model("minilm", kind="classifier", label_names=["negative", "positive"])
    results = attribute_many(
        minilm, [TEXT], "positive", method=["occlusion", "gradient_x_input", "attention_rollout"], progress=False
    )
    path = tmp_path / "attributions.html"
    AttributionView(results).to_html(path)
    context = chromium.new_context(offline=True)
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_function("() => document.querySelectorAll('.wb-attr-row[data-method]').length === 3", timeout=15_000)
    assert dialogs == [] and page.locator("#view img").count() == 0
    context.close()
