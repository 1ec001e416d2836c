"""The views' module text and the standalone export's page, with no browser: one prelude, no markup in the JSON."""

from __future__ import annotations

import json
import re

import pytest

from workbench.ui import AttentionView, AttributionView, CompressionView, MaskProbe, ProbeTimeline, TrainingDashboard
from workbench.ui._assets import PRELUDE, widget_file, widget_module
from workbench.ui._standalone import script_json, standalone_page

# Texts that would end the script element early or switch the HTML parser into the script's
# "double-escaped" state (after "<!--", a "<script" makes "</script>" no longer end the element).
PAYLOADS = ["<!--<script>", "<script>alert(1)</script>", "</script><!--", "-->", "a && b", "line\u2028break"]
VIEWS = ["attention", "attribution", "compression", "patching"]


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


def _top_level_names(source: str) -> set[str]:
    """The names a module declares at its top level (``function x``, ``const x``, ``let x``, ``class x``)."""
    return set(re.findall(r"^(?:function|const|let|var|class)\s+(\w+)", source, flags=re.MULTILINE))


MODULES = sorted(p.name for p in widget_file(PRELUDE).parent.glob("*.js") if p.name != PRELUDE)


@pytest.mark.parametrize("module", MODULES)
def test_a_view_module_declares_none_of_the_prelude_names(module: str) -> None:
    # The prelude and the module become one ES module: a name declared twice is a SyntaxError.
    prelude = _top_level_names(widget_file(PRELUDE).read_text())
    assert {"el", "svgEl", "diverging", "sequential"} <= prelude
    assert not prelude & _top_level_names(widget_file(module).read_text())


@pytest.mark.parametrize(
    "view", [AttentionView, AttributionView, CompressionView, TrainingDashboard, MaskProbe, ProbeTimeline]
)
def test_every_live_view_runs_the_prelude_before_its_module(view: type) -> None:
    esm = view._esm
    assert isinstance(esm, str) and esm.startswith(widget_file(PRELUDE).read_text())
    assert esm.rstrip().endswith("export default { render };")


@pytest.mark.parametrize("view", VIEWS)
def test_the_export_inlines_the_same_module_text_as_the_live_view(view: str) -> None:
    body = _script_body(standalone_page(view, view, {}))
    assert _constant(body, "esm") == widget_module(f"{view}.js")


def test_a_page_over_its_budget_is_refused_before_it_is_built(tmp_path):
    from workbench.errors import MemoryBudgetError
    from workbench.ui._standalone import standalone_page

    state = {"rows": ["token"] * 200_000}  # about 1.8 MB of JSON: its page needs three times that
    with pytest.raises(MemoryBudgetError, match=r"standalone page of the attribution view \(1\.\d MB of state\)"):
        standalone_page("big", "attribution", state, path=tmp_path / "page.html", memory_mb=2)
    assert not (tmp_path / "page.html").exists()
    page = standalone_page("big", "attribution", state, path=tmp_path / "page.html", memory_mb=8)
    assert (tmp_path / "page.html").read_text(encoding="utf-8") == page and len(page) > 1_800_000
