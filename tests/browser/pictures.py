"""The README's pictures, taken from the tutorials on trained models: ``make pictures``.

A tutorial marks a cell whose output is a picture with a tag in the cell's metadata::

    "metadata": {"tags": ["picture:attention"]}        # the cell's last visible rich output -> attention.png
    "metadata": {"tags": ["picture:dashboard@0"]}      # its output 0 -> dashboard.png

This script copies each tutorial that has such a tag into the root of a fresh JupyterLab (the browser
tests' harness: 127.0.0.1 only, offline, every request off the machine aborted and reported), opens it
in headless Chromium, runs all its cells in FULL mode (``WORKBENCH_QUICK=0``: the models are trained
for real) up to the last tagged cell (or a later cell tagged ``picture-wait``, such as a dashboard's
``wait()``: the cells after it play no part in the pictures), waits for it, and screenshots each
tagged output into the folder given (``docs/images`` for ``make pictures``). The tutorials themselves
are never written to.

    python tests/browser/pictures.py --out docs/images              # every tagged tutorial, FULL mode
    python tests/browser/pictures.py --out /tmp/p --quick           # a dry run of the pipeline (QUICK)
    python tests/browser/pictures.py --out docs/images --only attention --only dashboard

Pictures that come from elsewhere are named in :data:`OTHER_SOURCES` (``tuned_lens.png`` is drawn by
a benchmark); ``tests/browser/test_pictures.py`` checks that every picture the README shows has a source.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script: the harness is a sibling module
    sys.path.insert(0, str(HERE))

from harness import REPO, JupyterServer, LabPage, launch_chromium  # noqa: E402

TUTORIALS = REPO / "notebooks"
README = REPO / "README.md"
TAG = re.compile(r"^picture:([A-Za-z0-9_.-]+)(?:@(\d+))?$")
README_PICTURE = re.compile(r"\(docs/images/([A-Za-z0-9_.-]+)\.png\)")
# Pictures the README shows that no tutorial cell makes: name -> the command that makes them.
OTHER_SOURCES = {
    "tuned_lens": "python tests/benchmarks/tuned_lens.py --pictures docs/images",
}
PICTURE_VIEWPORT = {"width": 1400, "height": 2000}
NOTEBOOK_TIMEOUT_MS = 90 * 60_000  # the slowest tutorial in FULL mode takes tens of minutes on two cores
DRAWN_TIMEOUT_MS = 60_000

# An output is drawn when it has a size, no widget is still loading, and every plotly figure in it has its SVG.
DRAWN = """(output) => {
  const box = output.getBoundingClientRect();
  if (box.width < 20 || box.height < 20) return false;
  if (/Loading widget/.test(output.textContent)) return false;
  const plots = [...output.querySelectorAll(".js-plotly-plot")];
  if (output.classList.contains("js-plotly-plot")) plots.push(output);
  return plots.every((plot) => plot.querySelector("svg.main-svg") !== null);
}"""


@dataclass(frozen=True)
class TaggedPicture:
    """A picture a tutorial cell is tagged for: ``<name>.png`` from output ``output`` of cell ``cell``."""

    name: str
    notebook: Path
    cell: int  # index among all the notebook's cells (markdown included), as the page lays them out
    output: int | None  # None: the cell's last rich output (not a stream of printed text)


def tagged_pictures(notebook: Path) -> list[TaggedPicture]:
    """The pictures ``notebook``'s cells are tagged for, in cell order; a malformed ``picture:`` tag is an error."""
    cells = json.loads(notebook.read_text())["cells"]
    found = []
    for index, cell in enumerate(cells):
        for tag in cell.get("metadata", {}).get("tags", []):
            if not tag.startswith("picture:"):
                continue
            match = TAG.match(tag)
            if match is None or cell["cell_type"] != "code":
                raise ValueError(
                    f"{notebook.name} cell {index}: tag {tag!r} must be 'picture:<name>' or 'picture:<name>@<output>' "
                    "on a code cell"
                )
            found.append(TaggedPicture(match[1], notebook, index, None if match[2] is None else int(match[2])))
    return found


def tutorial_pictures(folder: Path = TUTORIALS) -> dict[str, TaggedPicture]:
    """Every picture the tutorials in ``folder`` are tagged for, by name; a name tagged twice is an error."""
    pictures: dict[str, TaggedPicture] = {}
    for notebook in sorted(folder.glob("*.ipynb")):
        for picture in tagged_pictures(notebook):
            if picture.name in pictures:
                first = pictures[picture.name]
                raise ValueError(
                    f"picture {picture.name!r} is tagged twice: {first.notebook.name} cell {first.cell} "
                    f"and {notebook.name} cell {picture.cell}"
                )
            pictures[picture.name] = picture
    return pictures


def readme_pictures(readme: Path = README) -> list[str]:
    """The names of the pictures the README shows (``docs/images/<name>.png``), in order."""
    return list(dict.fromkeys(README_PICTURE.findall(readme.read_text())))


def take_pictures(page: LabPage, pictures: Iterable[TaggedPicture], folder: Path) -> list[Path]:
    """Screenshot each tagged output of the notebook open in ``page`` as ``folder/<name>.png``; return the paths.

    Waits until each output is drawn (a size, no widget loading, plotly's SVG in place) first.
    """
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for picture in pictures:
        cell = page.cell(picture.cell)
        if picture.output is not None:
            output = cell.locator(".jp-OutputArea-output").nth(picture.output)
        else:  # printed text (stdout, stderr) is no picture, nor a copy the live view hides (the dashboard's)
            rich = cell.locator(".jp-OutputArea-output:not([data-mime-type^='application/vnd.jupyter.std'])")
            output = rich.filter(visible=True).last
        output.scroll_into_view_if_needed(timeout=10_000)
        handle = output.element_handle(timeout=10_000)
        page.wait_for(DRAWN, arg=handle, timeout_ms=DRAWN_TIMEOUT_MS, what=f"the output for {picture.name}.png")
        path = folder / f"{picture.name}.png"
        output.screenshot(path=str(path), animations="disabled")
        saved.append(path)
    return saved


def cells_for_pictures(cells: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cells up to the last one tagged ``picture:...`` or ``picture-wait``: all the pictures need."""
    marked = [
        i
        for i, cell in enumerate(cells)
        if any(tag.startswith("picture:") or tag == "picture-wait" for tag in cell.get("metadata", {}).get("tags", []))
    ]
    return list(cells[: marked[-1] + 1]) if marked else list(cells)


def run_tutorial(page: LabPage, notebook: str, cells: Sequence[dict[str, Any]]) -> None:
    """Open ``notebook`` (in the server's root), run all its cells, and wait until the last code cell is done."""
    page.open_notebook(notebook)
    page.run_all()
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            page.wait_cell_done(index, timeout_ms=NOTEBOOK_TIMEOUT_MS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images", help="where the PNGs go")
    parser.add_argument("--quick", action="store_true", help="run the tutorials in QUICK mode (a dry run)")
    parser.add_argument("--only", action="append", default=[], help="take only this picture (repeatable)")
    parser.add_argument("--tutorials", type=Path, default=TUTORIALS, help="the folder of tagged notebooks")
    args = parser.parse_args(argv)

    pictures = tutorial_pictures(args.tutorials)
    unknown = sorted(set(args.only) - set(pictures))
    if unknown:
        parser.error(f"no tutorial cell is tagged for {', '.join(unknown)}; tagged: {', '.join(sorted(pictures))}")
    chosen = [p for p in pictures.values() if not args.only or p.name in args.only]
    by_notebook: dict[Path, list[TaggedPicture]] = {}
    for picture in chosen:
        by_notebook.setdefault(picture.notebook, []).append(picture)
    if not by_notebook:
        print("no tutorial cell is tagged 'picture:<name>': nothing to take")
        return 1

    # The kernels inherit the server's environment: FULL mode unless asked, and the test run's settings.
    os.environ["WORKBENCH_QUICK"] = "1" if args.quick else "0"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    base = Path(tempfile.mkdtemp(prefix="wb-pictures-"))
    server = JupyterServer.start(base)
    leaks: list[str] = []
    try:
        with launch_chromium() as browser:
            for notebook, wanted in by_notebook.items():
                content = json.loads(notebook.read_text())
                cells = content["cells"] = cells_for_pictures(content["cells"])
                (server.root / notebook.name).write_text(json.dumps(content))
                page = LabPage(server, browser)
                # tall enough that the tallest picture (SmolLM2's 31-row lens) clears the toolbar and status bar
                page.page.set_viewport_size(PICTURE_VIEWPORT)
                started = time.monotonic()
                try:
                    run_tutorial(page, notebook.name, cells)
                    ran = time.monotonic() - started
                    paths = take_pictures(page, wanted, out)
                finally:
                    leaks += page.guard.external
                    page.close()
                print(
                    json.dumps(
                        {
                            "notebook": notebook.name,
                            "mode": "QUICK" if args.quick else "FULL",
                            "seconds": round(ran, 1),
                            "pictures": [str(p) for p in paths],
                        }
                    ),
                    flush=True,
                )
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    if leaks:
        print("requests off 127.0.0.1 were aborted:\n  " + "\n  ".join(leaks), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
