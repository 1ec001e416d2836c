"""The attention explorer in a real JupyterLab: MiniLM, 512 tokens, hover, model view, no script from tokens."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PAYLOAD = "<img src=x onerror=alert(1)>"

SETUP = f"""\
from workbench.models import load_model
from workbench.explain import attention
from workbench.ui import AttentionView
minilm = load_model("minilm")
short = AttentionView(attention(minilm, "The cat sat on the mat, {PAYLOAD} and purred."), layer=2, head=3)
short"""

LONG = """\
long_text = "The movie opens on a quiet street where nothing much happens, and then everything does. " * 40
long_view = AttentionView(attention(minilm, long_text))
long_view"""


@pytest.fixture(scope="module")
def attention_notebook(module_lab):
    module_lab.write_notebook("attention.ipynb", [SETUP, LONG])
    module_lab.open_notebook("attention.ipynb")
    dialogs = []
    module_lab.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    module_lab.run_all()
    module_lab.wait_cell_done(0, timeout_ms=120_000)
    module_lab.wait_cell_done(1, timeout_ms=120_000)
    module_lab.dialogs = dialogs
    return module_lab


def _view(index):
    return f".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell:nth-child({index + 1}) .wb-attention"


def test_the_view_renders_a_minilm_sentence_with_its_lines(attention_notebook):
    lab = attention_notebook
    lab.wait_for(
        "s => { const c = document.querySelector(s + ' .wb-att-lines'); return c && Number(c.dataset.lines) > 0; }",
        arg=_view(0),
        what="lines in the head view",
    )
    left = lab.page.locator(f"{_view(0)} .wb-att-left .wb-att-token")
    assert left.count() >= 15
    assert left.first.inner_text() == "[CLS]"
    assert lab.picture(_view(0), "attention").stat().st_size > 5_000


def test_a_token_with_markup_shows_as_text_and_runs_nothing(attention_notebook):
    lab = attention_notebook
    lab.assert_markup_shows_as_text(_view(0), ".wb-att-left .wb-att-token")
    assert lab.dialogs == []


def test_hovering_a_token_focuses_its_lines(attention_notebook):
    lab = attention_notebook
    canvas = f"{_view(0)} .wb-att-lines"
    before = lab.attr(canvas, "data-lines")
    lab.page.locator(f"{_view(0)} .wb-att-left .wb-att-token[data-index='3']").hover()
    lab.wait_for("s => document.querySelector(s).dataset.focus === '3'", arg=canvas, what="focus on token 3")
    after = lab.attr(canvas, "data-lines")
    assert int(after) < int(before)  # only token 3's links are drawn now
    highlighted = lab.page.locator(f"{_view(0)} .wb-att-right .wb-att-token[style*='background']")
    assert highlighted.count() > 0


def test_the_model_view_shows_layers_by_heads_thumbnails_and_opens_one(attention_notebook):
    lab = attention_notebook
    lab.page.locator(f"{_view(0)} button[data-mode='model']").click()
    lab.wait_for(
        "s => document.querySelectorAll(s + ' .wb-att-thumb').length === 72", arg=_view(0), what="6 x 12 thumbnails"
    )
    lab.page.locator(f"{_view(0)} .wb-att-thumb[data-layer='4'][data-head='7']").click()
    lab.wait_for(
        "s => { const h = document.querySelector(s + ' .wb-att-headview'); "
        "return h && h.dataset.layer === '4' && h.dataset.head === '7' && "
        "Number(document.querySelector(s + ' .wb-att-lines').dataset.lines) > 0; }",
        arg=_view(0),
        what="head 4:7 opened in full",
    )


def test_the_view_renders_512_tokens_and_says_the_text_was_cut(attention_notebook):
    lab = attention_notebook
    lab.wait_for(
        "s => document.querySelectorAll(s + ' .wb-att-left .wb-att-token').length === 512",
        arg=_view(1),
        timeout_ms=60_000,
        what="512 tokens in the long view",
    )
    note = lab.page.locator(f"{_view(1)} .wb-att-note").inner_text()
    assert "only the first 512" in note
    lab.page.locator(f"{_view(1)} button[data-mode='stats']").click()
    lab.wait_for(
        "s => document.querySelectorAll(s + ' .wb-att-cell').length === 72",
        arg=_view(1),
        what="the head-statistics map",
    )


def test_the_standalone_export_opens_offline_with_no_kernel(chromium, tmp_path):
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from workbench.explain import attention
    from workbench.models import load_model
    from workbench.ui import AttentionView

    path = tmp_path / "attention.html"
    AttentionView(attention(load_model("minilm"), f"A {PAYLOAD} test.")).to_html(path)
    context = chromium.new_context(offline=True)
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_function(
        "() => Number((document.querySelector('.wb-att-lines') || {dataset: {}}).dataset.lines) > 0", timeout=15_000
    )
    page.locator("button[data-mode='model']").click()
    # The view redraws on the next animation frame, so wait for it rather than count at once.
    page.wait_for_function("() => document.querySelectorAll('.wb-att-thumb').length === 72", timeout=15_000)
    assert dialogs == [] and page.locator("#view img").count() == 0
    context.close()
