"""The standalone export's page, with no browser: whatever a text holds, the inlined JSON holds no markup."""

from __future__ import annotations

import json

import pytest

from workbench.ui._standalone import script_json, standalone_page

# Texts that would end the script element early or switch the HTML parser into the script's
# "double-escaped" state (after "<!--", a "<script" makes "</script>" no longer end the element).
PAYLOADS = ["<!--<script>", "<script>alert(1)</script>", "</script><!--", "-->", "a && b", "line\u2028break"]
VIEWS = ["attention", "attribution", "compression"]


def _script_body(page: str) -> str:
    """What stands between the page's one module script tag and its end tag."""
    assert page.count('<script type="module">') == 1
    return page.split('<script type="module">', 1)[1].rsplit("</script>", 1)[0]


def _constant(body: str, name: str) -> object:
    """The JSON value of the line ``const <name> = ...;`` in the script."""
    line = next(line for line in body.splitlines() if line.startswith(f"const {name} = "))
    return json.loads(line.removeprefix(f"const {name} = ").removesuffix(";"))


@pytest.mark.parametrize("view", VIEWS)
def test_the_inlined_json_holds_no_markup_whatever_the_text(view: str) -> None:
    state = {"texts": PAYLOADS, "nested": {"<!--": ["</script>", "<script>"]}}
    extra = {"heads": {"0:0": "</script><!--<script>"}}
    page = standalone_page("<!--<script>", view, state, binary={"thumbs": "AAAA"}, extra=extra)
    body = _script_body(page)
    for marker in ("<!--", "<script", "</", "-->", "\u2028"):
        assert marker not in body, marker
    assert _constant(body, "state") == state  # escaped, not changed: the view reads the same strings
    assert _constant(body, "heads") == extra["heads"]
    assert "<title>&lt;!--&lt;script&gt;</title>" in page


@pytest.mark.parametrize("text", PAYLOADS)
def test_script_json_escapes_markup_and_reads_back_the_same(text: str) -> None:
    inlined = script_json({"text": text})
    assert not {"<", ">", "&", "\u2028"} & set(inlined)
    assert json.loads(inlined) == {"text": text}
