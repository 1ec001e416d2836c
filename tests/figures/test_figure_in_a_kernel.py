"""A figure displayed in a real kernel: plotly's JSON mime bundle, never plotly.js nor a CDN link.

In an ipykernel plotly's default renderer is ``plotly_mimetype``: the output is the figure as JSON, drawn
by the ``jupyterlab-plotly`` extension (JupyterLab 4, Notebook 7) or by VS Code's and Colab's own
renderers. A renderer that embeds plotly.js (``notebook``, ``iframe``) would put ~4.5 MB into every
saved tutorial, and one with ``connected=True`` would fetch it from a CDN: both fail here. The browser
test (tests/browser/test_figures_browser.py) checks the same outputs drawn in the two apps.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

PLOTLY_MIME = "application/vnd.plotly.v1+json"

CELL = """\
from workbench.figures import plot
from workbench.training.history import TrainingHistory
history = TrainingHistory([{"kind": "train", "step": s, "loss": 5.0 / s, "learning_rate": 1e-3,
                            "tokens_per_second": 900.0 + s, "tokens_seen": 64 * s, "elapsed_seconds": 0.1 * s}
                           for s in range(1, 9)] + [{"kind": "eval", "step": 8, "eval_loss": 0.9}])
figure = plot(history, name="<b>run</b>")
figure"""


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(CELL)]
    folder = tmp_path_factory.mktemp("kernel")
    client = NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()
    return notebook


def test_a_figure_cell_outputs_plotly_json_only(executed: nbformat.NotebookNode) -> None:
    (output,) = executed.cells[0].outputs
    assert output.output_type == "display_data"  # plotly displays itself (renderers.render_on_display)
    assert list(output.data) == [PLOTLY_MIME]  # no text/html carrying plotly.js, no require.js loader
    figure = output.data[PLOTLY_MIME]
    assert [trace["type"] for trace in figure["data"]].count("scatter") >= 3
    assert "&lt;b&gt;run&lt;/b&gt;" in figure["layout"]["title"]["text"]


def _array(value: Any) -> np.ndarray:
    """A JSON array of the figure, plain or as plotly's typed array (``{"dtype": "f8", "bdata": base64}``)."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value, dtype=np.float64)


def test_the_output_holds_the_figures_numbers_not_plotly_js(executed: nbformat.NotebookNode) -> None:
    whole = json.dumps(executed.cells[0].outputs)
    assert "plotly.js v" not in whole and "cdn.plot.ly" not in whole and "<script" not in whole
    assert len(whole) < 50_000  # eight points of a few series; plotly.js alone is ~4.5 MB
    raw_loss = executed.cells[0].outputs[0].data[PLOTLY_MIME]["data"][0]
    assert raw_loss["name"] == "training loss (raw)"
    np.testing.assert_allclose(_array(raw_loss["y"]), [5.0 / step for step in range(1, 9)], rtol=1e-5)
