"""Workbench figures in a real JupyterLab and a real Notebook 7, offline.

One notebook of real figures on a tiny model (a logit lens, an attention head map, a training run) runs
in each app at once, through the network guard: each figure is drawn by the ``jupyterlab-plotly``
renderer that ships with plotly (a federated extension served by the local server, in both apps), a
markup token shows as text, and the saved notebook keeps each figure as plotly JSON, not plotly.js.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
from harness import PANEL, REPO, LabPage
from pictures import tagged_pictures, take_pictures

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PAYLOAD = "<img src=x onerror=alert(1)>"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
MAX_OUTPUT_BYTES = 1_000_000  # plotly.js alone is ~4.5 MB: a bigger output would be an embedded copy

SETUP = f"""\
from workbench.models import load_model
from workbench.training import TrainConfig, Trainer
from workbench.explain import attention, logit_lens
from workbench.figures import plot
PAYLOAD = {PAYLOAD!r}
texts = ["the cat sat on the mat and looked at the dog.", "to be, or not to be, that is the question.",
         "a dog ran in the park while the cat slept on the warm mat."] * 8
gpt = load_model("tiny-gpt", corpus=texts, layers=2, hidden=32, heads=2, vocab_size=300, max_positions=64)
history = Trainer(gpt, "causal-lm", texts, config=TrainConfig(
    max_steps=8, batch_size=4, block_size=16, log_every=1, eval_every=4, eval_batches=1, progress=False,
    output_dir="runs/figures")).fit()"""

# cell index -> (what it draws, its source)
FIGURES = {
    1: ("logit lens", 'plot(logit_lens(gpt, "the cat " + PAYLOAD + " sat on the"))'),
    2: ("attention head map", 'plot(attention(gpt, "the cat sat on the mat"), statistic="entropy")'),
    3: ("training run", "plot(history, name=PAYLOAD)"),
}
CELLS = [SETUP, *(source for _, source in FIGURES.values())]
NOTEBOOK = "figures.ipynb"
# Tags as `make pictures` reads them in the tutorials (tests/browser/pictures.py): the last rich output, or output k.
PICTURE_TAGS = {1: "picture:figure-lens", 3: "picture:figure-training@0"}
APPS = ("lab", "notebook")

# What plotly drew in a cell's output: the figure's traces (gd.data), the SVG trace groups it rendered
# for them (one per trace: g.hm for a heatmap, g.trace for a scatter or bar), its title and tick texts.
DRAWN = """([panel, index]) => {
  const cell = document.querySelectorAll(panel + " .jp-Notebook .jp-Cell")[index];
  const plot = cell && cell.querySelector(".jp-OutputArea-output.js-plotly-plot");  // jupyterlab-plotly's node
  if (!plot || !plot._fullLayout || !plot.querySelector(".plot-container svg.main-svg")) return null;
  const texts = (selector) => [...plot.querySelectorAll(selector)].map((e) => e.textContent);
  return {
    traces: plot.data.length,
    types: plot.data.map((t) => t.type || "scatter"),
    heatmapGroups: plot.querySelectorAll(".heatmaplayer g.hm").length,
    heatmapImages: plot.querySelectorAll(".heatmaplayer g.hm image").length,
    scatterGroups: plot.querySelectorAll(".scatterlayer g.trace").length,
    title: texts(".gtitle").join(" "),
    ticks: texts(".xtick text, .ytick text"),
  };
}"""


@dataclass
class RanFigures:
    """The figures notebook run in one app: its page, the notebook as that page saved it, what the page asked for."""

    page: LabPage
    last_count: int = 0  # the execution count of the notebook's last cell
    saved: dict[str, Any] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def _run(page: LabPage, after: int) -> RanFigures:
    """Open the figures notebook in ``page``, run all its cells, wait until each figure is drawn, save it."""
    ran = RanFigures(page=page)
    page.page.on("request", lambda request: ran.requests.append(request.url))
    page.page.on("dialog", lambda dialog: (ran.dialogs.append(dialog.message), dialog.dismiss()))
    page.open_notebook(NOTEBOOK)
    page.run_all()
    for index in range(len(CELLS)):
        ran.last_count = page.wait_cell_done(index, timeout_ms=150_000, after=after)
    for index in FIGURES:
        _drawn(page, index)  # plotly draws after the output arrives
    ran.saved = page.save()
    return ran


@pytest.fixture(scope="module")
def figures(module_lab: LabPage, module_notebook7: LabPage) -> dict[str, RanFigures]:
    """The figures notebook run in JupyterLab, then in Notebook 7, each run saved.

    Both apps open the same file, so they share its session and kernel: one kernel start and one import
    of torch for the two (on two cores that is most of the time). Notebook 7 opens the notebook as
    JupyterLab saved it, figures included, and runs it again.
    """
    path = module_lab.write_notebook(NOTEBOOK, CELLS)
    notebook = nbformat.read(path, as_version=4)
    for index, tag in PICTURE_TAGS.items():
        notebook.cells[index].metadata["tags"] = [tag]
    nbformat.write(notebook, path)
    lab = _run(module_lab, after=0)
    return {"lab": lab, "notebook": _run(module_notebook7, after=lab.last_count)}


def _drawn(page: LabPage, index: int) -> dict[str, Any]:
    drawn: dict[str, Any] = page.wait_for(
        DRAWN, arg=[PANEL, index], timeout_ms=30_000, what=f"plotly to draw cell {index} in {page.app}"
    )
    return drawn


def _saved_figure(ran: RanFigures, index: int) -> dict[str, Any]:
    outputs = ran.saved["cells"][index]["outputs"]
    figures = [output["data"][PLOTLY_MIME] for output in outputs if PLOTLY_MIME in output.get("data", {})]
    assert len(figures) == 1, f"cell {index} ({FIGURES[index][0]}) saved {len(figures)} plotly figures"
    return figures[0]


@pytest.mark.parametrize("app", APPS)
def test_each_figure_is_drawn_as_svg_with_every_trace_it_holds(figures: dict[str, RanFigures], app: str) -> None:
    ran = figures[app]
    for index, (what, _) in FIGURES.items():
        held = [trace.get("type", "scatter") for trace in _saved_figure(ran, index)["data"]]
        drawn = _drawn(ran.page, index)
        assert drawn["types"] == held, f"{what} in {ran.page.app}"
        assert drawn["heatmapGroups"] == held.count("heatmap"), f"{what} in {ran.page.app}"
        assert drawn["heatmapImages"] == held.count("heatmap"), f"{what} in {ran.page.app}: a heatmap has no image"
        assert drawn["scatterGroups"] == held.count("scatter"), f"{what} in {ran.page.app}"
        assert drawn["ticks"], f"{what} in {ran.page.app} has no axis labels"
    assert "heatmap" in [t.get("type") for t in _saved_figure(ran, 1)["data"]]
    assert [t.get("type", "scatter") for t in _saved_figure(ran, 3)["data"]].count("scatter") >= 3


@pytest.mark.parametrize("app", APPS)
def test_a_markup_token_and_run_name_show_as_text(figures: dict[str, RanFigures], app: str) -> None:
    ran = figures[app]
    lens, run = _drawn(ran.page, 1), _drawn(ran.page, 3)
    assert PAYLOAD in lens["title"]  # the lens's text, as the reader typed it
    assert f"Training run {PAYLOAD}" in run["title"]
    outputs = ran.page.page.locator(f"{PANEL} .jp-OutputArea-output")
    assert outputs.count() >= len(FIGURES)
    # plotly.js keeps a hidden <img class="plot-img"> per plot for image export; the payload's has src=x.
    assert ran.page.page.locator(f"{PANEL} .jp-OutputArea-output [onerror], {PANEL} img[src='x']").count() == 0
    assert ran.dialogs == []


@pytest.mark.parametrize("app", APPS)
def test_plotly_is_drawn_by_the_local_labextension(figures: dict[str, RanFigures], app: str) -> None:
    ran = figures[app]
    renderer = [url for url in ran.requests if "/jupyterlab-plotly/static/" in url]
    assert renderer, f"{ran.page.app} never loaded jupyterlab-plotly's extension"
    assert all(url.startswith(ran.page.server.url) for url in renderer)
    assert ran.page.guard.external == [] and ran.page.guard.local_requests > 0


@pytest.mark.parametrize("app", APPS)
def test_the_saved_notebook_keeps_figures_as_json_and_png_without_plotly_js(
    figures: dict[str, RanFigures], app: str
) -> None:
    ran = figures[app]
    for index, (what, _) in FIGURES.items():
        (output,) = ran.saved["cells"][index]["outputs"]
        # the JSON for a live renderer, and the PNG jupyterlab-plotly adds once it has drawn (GitHub shows that)
        assert sorted(output["data"]) == ["application/vnd.plotly.v1+json", "image/png"], what
        assert len(json.dumps(output)) < MAX_OUTPUT_BYTES, what
    whole = json.dumps(ran.saved)
    assert "plotly.js v" not in whole and "cdn.plot.ly" not in whole
    assert len(whole) < MAX_OUTPUT_BYTES  # three figures, each with its picture: about 270 kB


def test_a_tagged_output_is_saved_as_a_picture_of_the_figure(figures: dict[str, RanFigures], tmp_path: Path) -> None:
    page = figures["lab"].page
    tagged = tagged_pictures(page.server.root / NOTEBOOK)
    assert [(p.name, p.cell, p.output) for p in tagged] == [("figure-lens", 1, None), ("figure-training", 3, 0)]
    paths = take_pictures(page, tagged, tmp_path)
    assert [p.name for p in paths] == ["figure-lens.png", "figure-training.png"]
    for picture, path in zip(tagged, paths, strict=True):
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        box = page.cell(picture.cell).locator(".jp-OutputArea-output.js-plotly-plot").bounding_box()
        assert box is not None and abs(width - box["width"]) <= 2 and abs(height - box["height"]) <= 2
    assert not any(Path(p).is_relative_to(REPO / "docs") for p in paths)
