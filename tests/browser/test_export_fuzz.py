"""Every view's standalone HTML export, fuzzed with markup and script tokens, opened in Chromium:
no script runs, no dialog fires, no element is injected, and the text shows as text."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "</script><script>alert(3)</script>",
    "<svg onload=alert(4)>",
    '" onmouseover="alert(5)',
    "javascript:alert(6)",
    "${alert(7)} {{7*7}}",
    "<!-- --><iframe src=javascript:alert(8)>",
    # The HTML parser's script states: after "<!--", a "<script" makes "</script>" no longer end the
    # element (the "double-escaped" state) until a "-->"; a page inlined unescaped renders nothing at
    # all. So "-->" comes first and "<!--<script>" last: no later payload closes what it opens.
    "-->",
    "</script><!--",
    "<script>",
    "<!--<script>",
]


@pytest.fixture(scope="module")
def pages(tmp_path_factory, make_tiny):
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from workbench.compress import compare_models, quantize
    from workbench.explain import attention, attribute_many
    from workbench.ui import AttentionView, AttributionView, CompressionView

    folder = tmp_path_factory.mktemp("exports")
    text = "the cat " + " ".join(PAYLOADS) + " sat"
    bert = make_tiny("tiny-bert", max_positions=256)  # room for every payload
    clf = make_tiny(
        "tiny-bert", kind="classifier", label_names=["<b>no</b>", "<script>yes</script>"], max_positions=256
    )
    out = {
        "attention": AttentionView(attention(bert, text)).to_html(folder / "attention.html"),
        "attributions": AttributionView(
            attribute_many(clf, [text], method=["occlusion", "gradient_x_input"], progress=False),
            title="<img src=x onerror=alert(9)>",
        ).to_html(folder / "attributions.html"),
        "compression": CompressionView(
            compare_models(clf, quantize(clf), texts=[text], lengths=(8,), repeats=1)
        ).to_html(folder / "compression.html"),
    }
    return folder, out


@pytest.mark.parametrize("view", ["attention", "attributions", "compression"])
def test_a_fuzzed_export_runs_no_script_and_shows_the_text(chromium, pages, view):
    folder, _ = pages
    context = chromium.new_context(offline=True)
    page = context.new_page()
    dialogs, errors = [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((folder / f"{view}.html").as_uri())
    root = {"attention": ".wb-attention", "attributions": ".wb-attribution", "compression": ".wb-compression"}[view]
    page.wait_for_selector(root, timeout=15_000)
    page.wait_for_timeout(300)
    for selector in ("#view script", "#view img", "#view iframe", "#view svg[onload]", "[onerror]", "[onmouseover]"):
        assert page.locator(selector).count() == 0, selector
    assert page.locator("script").count() == 1  # the page's own module, nothing else
    shown = page.locator("#view").inner_text()
    pieces = shown.replace("##", "").replace("\n", "")
    assert "<" in shown and ">" in shown and "alert" in pieces  # the markup shows as text
    if view == "attributions":
        page.locator(".wb-attr-row[data-method='occlusion'] .wb-attr-token").nth(3).hover()
    if view == "compression":
        page.locator(".wb-comp-token").nth(3).hover()
        page.locator(".wb-comp-cell").first.hover()
    assert dialogs == [] and errors == []
    context.close()
