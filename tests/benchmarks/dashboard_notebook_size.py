"""Bytes a saved notebook gains from a live training view: our dashboard vs plotly's FigureWidget.

Executes three small notebooks with nbclient, saving widget state as JupyterLab's "save widget
state" does: the same 200-step training (a) with no view, (b) with the TrainingDashboard,
(c) with a plotly FigureWidget updated at every log step (batch_update). Also times one
dashboard state push. The last line printed is JSON.

    .venv/bin/python tests/benchmarks/dashboard_notebook_size.py
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import nbformat
from nbclient import NotebookClient

SETUP = """\
from workbench.models import load_model
from workbench.training import TrainConfig, Trainer, Callback
texts = ["The cat sat on the mat and looked at the dog.", "To be, or not to be, that is the question."] * 40
bundle = load_model("tiny-bert", corpus=texts, layers=2, hidden=32, heads=2, vocab_size=300, max_positions=64)
trainer = Trainer(bundle, "masked-lm", texts, config=TrainConfig(max_steps=200, batch_size=4, block_size=16,
                                                                 log_every=1, progress=False))
"""
VARIANTS = {
    "none": "trainer.fit(); None",
    "dashboard": "from workbench.ui import TrainingDashboard\ndashboard = TrainingDashboard()\n"
    "dashboard.run(trainer)\ndashboard.wait()",
    "plotly_figurewidget": (
        "import plotly.graph_objects as go\nfig = go.FigureWidget(go.Scatter(x=[], y=[], name='loss'))\n"
        "class Live(Callback):\n"
        "    def on_log(self, trainer, state, control, logs):\n"
        "        with fig.batch_update():\n"
        "            fig.data[0].x = [r['step'] for r in trainer.history.train]\n"
        "            fig.data[0].y = [r['loss'] for r in trainer.history.train]\n"
        "trainer.callbacks.add(Live())\ndisplay(fig)\ntrainer.fit(); None"
    ),
}


def run(variant: str, folder: Path) -> int:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell(VARIANTS[variant])]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(
        nb, timeout=600, kernel_name="python3", store_widget_state=True, resources={"metadata": {"path": str(folder)}}
    ).execute()
    path = folder / f"{variant}.ipynb"
    nbformat.write(nb, path)
    return path.stat().st_size


def push_cost_ms() -> float:
    from types import SimpleNamespace

    from workbench.training import TrainingHistory
    from workbench.training.events import TrainState
    from workbench.ui import TrainingDashboard

    history = TrainingHistory(
        [
            {
                "kind": "train",
                "step": i,
                "loss": 1 / i,
                "smoothed_loss": 1 / i,
                "learning_rate": 1e-3,
                "tokens_per_second": 1e4,
            }
            for i in range(1, 5001)
        ]
    )
    fake = SimpleNamespace(
        history=history,
        state=TrainState(max_steps=5000, status="running"),
        config=SimpleNamespace(output_dir=None),
        task=SimpleNamespace(name="masked-lm"),
        bundle=SimpleNamespace(name="fake"),
    )
    dashboard = TrainingDashboard()
    dashboard._trainers.append(fake)
    dashboard._names.append("fake")
    start = time.perf_counter()
    for _ in range(50):
        dashboard._push()
    return (time.perf_counter() - start) / 50 * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {v: run(v, Path(tmp)) for v in VARIANTS}
    out = {
        "notebook_bytes": sizes,
        "dashboard_gain_bytes": sizes["dashboard"] - sizes["none"],
        "figurewidget_gain_bytes": sizes["plotly_figurewidget"] - sizes["none"],
        "push_ms_5000_logged_steps": round(push_cost_ms(), 2),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
