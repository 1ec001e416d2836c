"""The patching view in a real JupyterLab: a map of positions and one of heads on a tiny model (built in a
fraction of a second), values on hover, markup tokens as text, a head opened in the attention view, and
the standalone export offline."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PAYLOAD = "<img src=x onerror=alert(1)>"

SETUP = f"""\
import numpy as np
from IPython.display import display
from workbench.models import load_model
from workbench.explain.patching_result import PatchingResult
from workbench.explain.tokens import text_tokens
from workbench.ui.patching_view import PatchingView
corpus = ["the cat sat on the mat and the dog sat on the rug.", "a cat and a dog."] * 3
gpt = load_model("tiny-gpt", corpus=corpus, layers=3, hidden=32, heads=4, vocab_size=300, max_positions=64)
clean, corrupted = "the cat {PAYLOAD} sat on the mat", "the dog {PAYLOAD} sat on the mat"
ct, rt = text_tokens(gpt, clean), text_tokens(gpt, corrupted)
n = len(ct.text)
rng = np.random.default_rng(0)
positions = PatchingResult(
    gpt.name, "patching", "resid_post", "logit_diff(' mat', ' rug')", clean, ct,
    rng.uniform(-0.4, 1.0, (3, n)).astype(np.float32), [0, 1, 2], list(range(n)), 2.0, -1.0,
    corrupted=corrupted, corrupted_tokens=rt, differing=[i for i in range(n) if ct.ids[i] != rt.ids[i]])
heads = PatchingResult(
    gpt.name, "ablation", "head", "p(' mat')", clean, ct,
    rng.normal(0.0, 0.3, (3, 4)).astype(np.float32), [0, 1, 2], [0, 1, 2, 3], 0.2, 0.2)
display(PatchingView(positions))
print("tokens", n)
PatchingView(heads, gpt)"""

CELL = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell:nth-child(1)"
VIEWS = f"{CELL} .wb-patching"
POSITIONS = f"{CELL} .jp-OutputArea-child:nth-child(1) .wb-patching"
HEADS = f"{CELL} .jp-OutputArea-child:nth-child(3) .wb-patching"


@pytest.fixture(scope="module")
def patching_notebook(module_lab):
    lab = module_lab.run_view_notebook("patching.ipynb", SETUP)
    lab.wait_for("s => document.querySelectorAll(s).length === 2", arg=VIEWS, what="two patching views")
    lab.tokens = int(lab.wait_output_matching(0, r"tokens (\d+)").group(1))
    return lab


def test_the_map_has_a_coloured_cell_per_layer_and_token_and_one_per_head(patching_notebook):
    lab = patching_notebook
    n = lab.tokens
    lab.wait_for("([s, k]) => document.querySelectorAll(s + ' .wb-patch-cell').length === k", arg=[POSITIONS, 3 * n])
    assert lab.page.locator(f"{POSITIONS} .wb-patch-cell[style*='background']").count() == 3 * n
    assert lab.page.locator(f"{POSITIONS} .wb-patch-xtoken").count() == n
    assert lab.page.locator(f"{HEADS} .wb-patch-cell").count() == 12
    ends = lab.page.locator(f"{POSITIONS} .wb-patch-legend-end").all_inner_texts()
    assert ends[0] == "-" + ends[1].lstrip("+")  # symmetric around zero
    differs = lab.page.locator(f"{POSITIONS} .wb-patch-text .wb-patch-differs").all_inner_texts()
    assert differs == [" cat", " dog"]
    assert lab.picture(POSITIONS, "patching-tiny").stat().st_size > 5_000


def test_hovering_a_cell_shows_its_site_token_value_and_metric(patching_notebook):
    lab = patching_notebook
    cell = lab.page.locator(f"{POSITIONS} .wb-patch-cell[data-layer='1'][data-column='2']")
    cell.hover()
    lab.wait_for(
        "s => document.querySelector(s + ' .wb-patch-status').dataset.column === '2'",
        arg=POSITIONS,
        what="the status line on layer 1, position 2",
    )
    status = lab.page.locator(f"{POSITIONS} .wb-patch-status").inner_text()
    site, token, value, meaning = status.split(" · ")
    label = lab.page.locator(f"{POSITIONS} .wb-patch-xtoken[data-position='2']").text_content()
    assert site == "resid_post.1" and token == f"position 2 “{label}”" and label
    assert float(value) == pytest.approx(float(cell.get_attribute("data-value")), rel=2e-3)
    raw = float(meaning.split(" = ")[1].split(" ")[0])
    assert raw == pytest.approx(-1.0 + 3.0 * float(value), rel=2e-2, abs=2e-3)  # corrupted + v * (clean - corrupted)


def test_markup_tokens_show_as_text_and_run_nothing(patching_notebook):
    lab = patching_notebook
    shown = "".join(lab.page.locator(f"{POSITIONS} .wb-patch-text").first.locator(".wb-patch-token").all_inner_texts())
    assert PAYLOAD in shown
    assert lab.page.locator(f"{VIEWS} img").count() == 0 and lab.dialogs == []


def test_clicking_a_head_opens_it_in_the_attention_view_below(patching_notebook):
    lab = patching_notebook
    head = lab.page.locator(f"{HEADS} .wb-patch-cell[data-layer='2'][data-column='3']")
    head.hover()
    lab.wait_for("s => document.querySelector(s + ' .wb-patch-status').dataset.column === '3'", arg=HEADS)
    site, value, meaning = lab.page.locator(f"{HEADS} .wb-patch-status").inner_text().split(" · ")
    assert site == "head.2.3" and meaning.endswith("with the head ablated (plain run 0.200)")
    assert float(meaning.split(" = ")[1].split(" ")[0]) == pytest.approx(0.2 + float(value), abs=2e-3)
    head.click()
    lab.wait_for(
        "s => { const h = document.querySelector(s + ' .wb-patch-attention .wb-att-headview'); "
        "return h && h.dataset.layer === '2' && h.dataset.head === '3'; }",
        arg=HEADS,
        timeout_ms=60_000,
        what="head 2.3 in the attention view below the map",
    )
    assert lab.page.locator(f"{HEADS} .wb-patch-message").inner_text().startswith("Head 2.3")
    lab.page.locator(f"{HEADS} .wb-patch-cell[data-layer='0'][data-column='1']").click()
    lab.wait_for(
        "s => { const h = document.querySelector(s + ' .wb-patch-attention .wb-att-headview'); "
        "return h && h.dataset.layer === '0' && h.dataset.head === '1'; }",
        arg=HEADS,
        what="head 0.1 in the same attention view",
    )
    assert lab.page.locator(f"{HEADS} .wb-patch-attention .wb-attention").count() == 1


def test_the_standalone_export_opens_offline_with_hover(chromium, tmp_path):
    import numpy as np

    from workbench.explain.patching_result import PatchingResult
    from workbench.explain.tokens import TokenInfo
    from workbench.ui.patching_view import PatchingView

    words = ["the", " cat", " ", "<", "img src=x onerror=alert(1)", ">", " sat"]
    n = len(words)
    tokens = TokenInfo(words, [False] * n, [False] * n, [False] * n, list(range(n)), [0] * n)
    values = np.arange(2 * n, dtype=np.float32).reshape(2, n) / 10 - 0.3
    result = PatchingResult("m", "causal_tracing", "mlp_out", "p(' mat')", "".join(words), tokens, values,
                            [4, 5], list(range(n)), 0.9, 0.1, subject=[1], samples=10)  # fmt: skip
    path = tmp_path / "patching.html"
    PatchingView(result).to_html(path)
    context = chromium.new_context(offline=True)
    page = context.new_page()
    dialogs, errors = [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_function(f"() => document.querySelectorAll('.wb-patch-cell').length === {2 * n}", timeout=15_000)
    page.locator(".wb-patch-cell[data-layer='5'][data-column='1']").hover()
    page.wait_for_function("() => document.querySelector('.wb-patch-status').dataset.column === '1'", timeout=5_000)
    status = page.locator(".wb-patch-status").inner_text()
    assert status.startswith("mlp_out.5 · position 1 “ cat” · +0.500 · p(' mat') = 0.500 (noised 0.100")
    assert page.locator(".wb-patch-noised").all_inner_texts() == [" cat"]
    assert page.locator("#view img").count() == 0 and dialogs == [] and errors == []
    context.close()
