"""Wall 1: the engine never imports Jupyter or plotly, checked on every engine module.

Every module under ``workbench/`` except the view side (``workbench.ui``, ``workbench.figures``)
is found by walking the package and imported, one at a time, in an interpreter started for the
check, so a lazily loaded module (the Trainer's loop, say) is checked as surely as ``workbench``
itself. After a module that loads a forbidden package, those packages (and the module) are
dropped from ``sys.modules`` so the next module is judged on its own imports.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
import textwrap

import workbench

VIEW_PACKAGES = ("workbench.ui", "workbench.figures")
FORBIDDEN = ("ipywidgets", "IPython", "anywidget", "plotly")


def engine_modules() -> list[str]:
    """Every importable module of the workbench outside the view side, found by walking the package."""
    names = ["workbench"]
    for info in pkgutil.walk_packages(workbench.__path__, prefix="workbench."):
        if not info.name.startswith(VIEW_PACKAGES) and not info.name.split(".")[-1].startswith("__"):
            names.append(info.name)
    return sorted(names)


_PROBE = textwrap.dedent(
    """
    import importlib, json, sys
    forbidden = tuple(json.loads(sys.argv[2]))
    loaded = {}
    for name in json.loads(sys.argv[1]):
        importlib.import_module(name)
        bad = sorted(m for m in sys.modules if m.split(".")[0] in forbidden)
        if bad:
            loaded[name] = sorted({m.split(".")[0] for m in bad})
            for m in bad + [name]:
                sys.modules.pop(m, None)
    print(json.dumps(loaded))
    """
)


def _forbidden_imports(modules: list[str]) -> dict[str, list[str]]:
    """Which of ``modules`` load a forbidden package, by their names, imported in a new interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(modules), json.dumps(FORBIDDEN)],
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, list[str]] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def test_the_walk_finds_the_lazily_loaded_trainer_and_formats_modules():
    modules = engine_modules()
    assert {"workbench.training.checkpoint", "workbench.training.callbacks", "workbench.cli"} <= set(modules)
    assert sum(m.startswith("workbench.compress.") for m in modules) >= 3
    assert sum(m.startswith("workbench.training.") for m in modules) >= 10
    assert not any(m.startswith(VIEW_PACKAGES) for m in modules)


def test_no_engine_module_loads_jupyter_or_plotly():
    found = _forbidden_imports(engine_modules())
    assert found == {}, f"engine modules that load Jupyter or plotly: {found}"


def test_the_probe_catches_a_module_that_imports_a_view_package(tmp_path, monkeypatch):
    # The check itself must be able to fail: a module that imports IPython is reported.
    (tmp_path / "wall_probe_bad.py").write_text("import json\nimport IPython\n")
    (tmp_path / "wall_probe_good.py").write_text("import json\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    found = _forbidden_imports(["wall_probe_good", "wall_probe_bad", "wall_probe_good"])
    assert found == {"wall_probe_bad": ["IPython"]}
