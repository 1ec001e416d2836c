"""Give every tutorial the same opening: Binder and Colab badges under its title (inline SVG, so they
show offline), and a first code cell that installs the workbench on Colab only (and turns on Colab's
widget manager) before ``QUICK``.

    python tools/notebook_headers.py          # rewrite notebooks/*.ipynb in place (idempotent)
    python tools/notebook_headers.py --check  # exit 1 if a notebook lacks the opening

The repository address comes from pyproject.toml ([project.urls] Repository).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
BADGE_MARK = "<!-- badges -->"
COLAB_MARK = "# Colab only:"


def repository() -> str:
    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    return url.removeprefix("https://github.com/").rstrip("/")


def badge(label: str, message: str, color: str) -> str:
    """A two-part badge (grey label, coloured message) as an SVG ``data:`` URI: it shows offline.

    The widths come from a 7 px average glyph at 11 px; ``textLength`` holds each text to its part in
    whatever font the reader has.
    """
    left, right = 7 * len(label) + 12, 7 * len(message) + 12
    width = left + right
    text = f"{label}: {message}"
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="{text}">'
        f"<title>{text}</title>"
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{color}"/></g>'
        '<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" text-anchor="middle">'
        f'<text x="{left / 2:g}" y="14" textLength="{left - 12}" lengthAdjust="spacingAndGlyphs">{label}</text>'
        f'<text x="{left + right / 2:g}" y="14" textLength="{right - 12}" lengthAdjust="spacingAndGlyphs">'
        f"{message}</text></g></svg>"
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def badges(name: str) -> str:
    repo = repository()
    binder = f"https://mybinder.org/v2/gh/{repo}/main?labpath=notebooks%2F{name}"
    colab = f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{name}"
    return (
        f"{BADGE_MARK}\n[![Binder]({badge('launch', 'binder', '#579aca')})]({binder}) "
        f"[![Open In Colab]({badge('open in', 'Colab', '#e37400')})]({colab})"
    )


def colab_block() -> str:
    return (
        f"{COLAB_MARK} install the workbench and turn on third-party widgets (elsewhere this does nothing).\n"
        "import os, subprocess, sys\n"
        'if "google.colab" in sys.modules:\n'
        f'    subprocess.run([sys.executable, "-m", "pip", "install", "-q", '
        f'"workbench[onnx] @ git+https://github.com/{repository()}"], check=True)\n'
        "    from google.colab import output\n"
        "    output.enable_custom_widget_manager()\n"
    )


def _text(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _set_text(cell: dict, text: str) -> None:
    """Replace a cell's source in the form the file keeps it: one string, or nbformat's list of lines."""
    cell["source"] = text.splitlines(keepends=True) if isinstance(cell["source"], list) else text


def stamp(path: Path) -> bool:
    """Add or refresh the opening of one notebook; True when the file changed."""
    nb = json.loads(path.read_text())
    before = json.dumps(nb)
    title = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    text = re.sub(rf"\n*{re.escape(BADGE_MARK)}\n[^\n]*", "", _text(title))
    head, _, rest = text.partition("\n")
    _set_text(title, f"{head}\n\n{badges(path.name)}\n{rest}")
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    body = _text(code)
    if COLAB_MARK in body:  # an earlier opening: keep what follows it
        body = body.split("output.enable_custom_widget_manager()\n", 1)[-1]
    body = re.sub(r"^import os\n", "", body)
    _set_text(code, colab_block() + body)
    after = json.dumps(nb)
    if after != before:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return after != before


def web_images(markdown: str) -> list[str]:
    """The addresses of the images a markdown text loads from the web (markdown or HTML ``<img>``)."""
    return re.findall(r"!\[[^\]]*\]\(\s*<?(https?://[^)\s>]+)", markdown) + re.findall(
        r"<img\b[^>]*\bsrc\s*=\s*[\"']?(https?://[^\"'\s>]+)", markdown, re.I
    )


def check(path: Path) -> list[str]:
    """What the opening of one notebook lacks."""
    nb = json.loads(path.read_text())
    problems = []
    title = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    if badges(path.name) not in _text(title):
        problems.append("the Binder and Colab badges")
    if web_images(_text(title)):
        problems.append(f"images that show offline (it loads {', '.join(web_images(_text(title)))})")
    code = _text(next(c for c in nb["cells"] if c["cell_type"] == "code"))
    if COLAB_MARK not in code or "enable_custom_widget_manager" not in code:
        problems.append("the Colab install cell")
    if not re.search(r'^QUICK = os\.environ\.get\("WORKBENCH_QUICK", "0"\) == "1"$', code, re.M):
        problems.append('the QUICK switch (QUICK = os.environ.get("WORKBENCH_QUICK", "0") == "1")')
    return problems


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.check:
        bad = {p.name: check(p) for p in paths}
        bad = {k: v for k, v in bad.items() if v}
        for name, problems in bad.items():
            print(f"{name} lacks {', '.join(problems)}")
        return 1 if bad else 0
    for p in paths:
        print(("updated " if stamp(p) else "unchanged ") + p.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
