"""Give every tutorial the same opening: Binder and Colab badges under its title, and a first code
cell that installs the workbench on Colab only (and turns on Colab's widget manager) before ``QUICK``.

    python tools/notebook_headers.py          # rewrite notebooks/*.ipynb in place (idempotent)
    python tools/notebook_headers.py --check  # exit 1 if a notebook lacks the opening

The repository address comes from pyproject.toml ([project.urls] Repository).
"""

from __future__ import annotations

import argparse
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


def badges(name: str) -> str:
    repo = repository()
    binder = f"https://mybinder.org/v2/gh/{repo}/main?labpath=notebooks%2F{name}"
    colab = f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{name}"
    return (
        f"{BADGE_MARK}\n[![Binder](https://mybinder.org/badge_logo.svg)]({binder}) "
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab})"
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


def stamp(path: Path) -> bool:
    """Add or refresh the opening of one notebook; True when the file changed."""
    nb = json.loads(path.read_text())
    before = json.dumps(nb)
    title = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    text = re.sub(rf"\n*{re.escape(BADGE_MARK)}\n[^\n]*", "", _text(title))
    head, _, rest = text.partition("\n")
    title["source"] = f"{head}\n\n{badges(path.name)}\n{rest}"
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    body = _text(code)
    if COLAB_MARK in body:  # an earlier opening: keep what follows it
        body = body.split("output.enable_custom_widget_manager()\n", 1)[-1]
    body = re.sub(r"^import os\n", "", body)
    code["source"] = colab_block() + body
    after = json.dumps(nb)
    if after != before:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return after != before


def check(path: Path) -> list[str]:
    """What the opening of one notebook lacks."""
    nb = json.loads(path.read_text())
    problems = []
    title = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    if badges(path.name) not in _text(title):
        problems.append("the Binder and Colab badges")
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
