"""One HTML file that runs a view's ES module with no kernel: state inlined, a small model for the widget's."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.explain.budget import require
from workbench.ui._assets import widget_css, widget_module

__all__ = ["script_json", "standalone_page"]


def standalone_page(
    title: str,
    module: str,
    state: Mapping[str, Any],
    *,
    binary: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    on_set: str = "",
    before_render: str = "",
    path: str | Path | None = None,
    memory_mb: int | None = None,
) -> str:
    """The page for view ``module`` (``attention`` loads ``attention.js``, after the prelude, and ``attention.css``).

    ``state`` goes in as JSON; ``binary`` values are base64 strings decoded to bytes; ``extra``
    values are inlined as JS constants of those names; ``on_set`` is JS run inside ``model.set(k, v)``
    after the change; ``before_render`` runs once before the view renders. Written to ``path`` when given.
    Raises ``MemoryBudgetError`` before building the page when it (the state's JSON and the page that holds
    it: about three copies) would need more than ``memory_mb`` (default: the kernel's budget).
    """
    state_json = script_json(state)
    constants = "".join(f"const {name} = {script_json(value)};\n" for name, value in (extra or {}).items())
    size = len(state_json) + len(constants) + sum(len(v) for v in (binary or {}).values())
    require(
        3 * size,
        memory_mb,
        f"the standalone page of the {module} view ({size / 2**20:,.1f} MB of state)",
        "a view of less data",
    )
    page = _PAGE.format(
        title=html.escape(title),
        css=widget_css(f"{module}.css"),
        esm=script_json(widget_module(f"{module}.js")),
        state=state_json,
        binary=script_json(binary or {}),
        constants=constants,
        on_set=on_set,
        before_render=before_render,
    )
    if path is not None:
        Path(path).write_text(page, encoding="utf-8")
    return page


# Inside a <script> element the HTML parser still looks for "</script" and, after "<!--", for "<script":
# a text holding "<!--<script>" would switch it to the double-escaped state and the page would render
# nothing. With <, > and & written as JSON escapes (as Django's json_script does) no markup is left.
# U+2028/2029 are escaped too, for the JS parsers that predate JSON superset (ES2019).
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(value: object) -> str:
    """``value`` as JSON that can stand inside a ``<script>`` element: no ``<``, ``>`` or ``&`` left in it."""
    return json.dumps(value).translate(_SCRIPT_SAFE)


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>{css}</style></head>
<body><div id="view"></div>
<script type="module">
const esm = {esm};
const state = {state};
const binary = {binary};
{constants}const decode = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
for (const [k, v] of Object.entries(binary)) state[k] = decode(v);
const listeners = {{}};
const fire = (name) => (listeners["change:" + name] || []).forEach((f) => f());
const model = {{
  get: (k) => state[k],
  set(k, v) {{ state[k] = v; fire(k); {on_set} }},
  on: (e, f) => {{ (listeners[e] = listeners[e] || []).push(f); }},
  off: (e, f) => {{ listeners[e] = (listeners[e] || []).filter((g) => g !== f); }},
  save_changes() {{}}, send() {{}},
}};
{before_render}
const url = URL.createObjectURL(new Blob([esm], {{ type: "text/javascript" }}));
const mod = await import(url);
mod.default.render({{ model, el: document.getElementById("view") }});
</script></body></html>
"""
