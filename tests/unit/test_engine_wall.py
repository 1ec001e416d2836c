"""Wall 1: the engine never imports Jupyter."""

from __future__ import annotations

import subprocess
import sys

ENGINE_MODULES = [
    "workbench",
    "workbench.assets",
    "workbench.models",
    "workbench.data",
    "workbench.training",
    "workbench.explain",
    "workbench.explain.attribution",
    "workbench.explain.faithfulness",
    "workbench.recipes",
    "workbench.cli",
    "workbench.demo",
    "workbench.compress",
    "workbench.training.launch",
    "workbench.training.distributed",
]


def test_importing_the_engine_loads_no_jupyter_or_plotly():
    code = (
        "import sys\n"
        f"for name in {ENGINE_MODULES!r}: __import__(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('ipywidgets', 'IPython', 'plotly', 'anywidget'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"the engine imported: {out.stdout.strip()}"
