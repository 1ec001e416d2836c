"""Where the views' ES modules and CSS live: ``widgets/`` in a checkout, ``workbench/_widgets`` in a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
PRELUDE = "prelude.js"  # the helpers every view's module shares


def widget_file(name: str) -> Path:
    """The path of a front-end file by name (``dashboard.js``); raises FileNotFoundError naming both places."""
    for folder in (_PACKAGE / "_widgets", _PACKAGE.parent / "widgets"):
        path = folder / name
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"The view file {name} is in neither {_PACKAGE / '_widgets'} nor {_PACKAGE.parent / 'widgets'}; "
        "reinstall the workbench (pip install -e .)."
    )


def widget_module(name: str) -> str:
    """A view's ES module as the browser runs it: the shared ``prelude.js`` followed by the module itself.

    Plain concatenation, no build step: the prelude's helpers (``el``, ``svgEl``, the colour scales)
    become top-level names of the one module, whose ``export default`` still works. The live widget's
    ``_esm`` and the standalone export both take this text.
    """
    return widget_file(PRELUDE).read_text(encoding="utf-8") + "\n" + widget_file(name).read_text(encoding="utf-8")


def widget_css(name: str) -> str:
    """A view's stylesheet: the shared frame and theme colours (``base.css``) followed by its own."""
    return widget_file("base.css").read_text() + "\n" + widget_file(name).read_text()
