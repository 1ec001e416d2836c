"""The shape of the code, read from its imports: the walls, no cycles between packages, no borrowed privates.

Every ``import`` statement under ``workbench/`` counts, also the ones inside functions (a lazy
import is still an arrow). Packages are the second level of names: ``workbench.training``,
``workbench.explain``, ``workbench.models``; a top-level module (``workbench.cli``) is its own.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import workbench

ROOT = Path(workbench.__file__).resolve().parent
VIEW_PACKAGES = ("workbench.ui", "workbench.figures")
# The root package re-exports the public API lazily (importlib, not an import statement); the
# command line and the demo drive every layer. None of them is imported by an engine module.
ENTRY_POINTS = ("workbench", "workbench.__main__", "workbench.cli", "workbench.demo")


@dataclass(frozen=True)
class Arrow:
    """One import: ``source`` (a module) imports ``target`` (a module), and ``names`` from it."""

    source: str
    target: str
    names: tuple[str, ...]
    line: int


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def arrows(sources: dict[str, str]) -> list[Arrow]:
    """Every import among ``sources`` (module name -> its text) that points into the workbench."""
    found = []
    for source, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                found += [Arrow(source, a.name, (), node.lineno) for a in node.names if a.name.startswith("workbench")]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("workbench"):
                module = node.module or ""
                # `from workbench.training import checkpoint` imports a module, not a name
                for alias in node.names:
                    if f"{module}.{alias.name}" in sources:
                        found.append(Arrow(source, f"{module}.{alias.name}", (), node.lineno))
                    else:
                        found.append(Arrow(source, module, (alias.name,), node.lineno))
    return found


def package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def is_engine(module: str) -> bool:
    return not module.startswith(VIEW_PACKAGES) and module not in ENTRY_POINTS


def engine_to_view(found: list[Arrow]) -> list[Arrow]:
    return [a for a in found if is_engine(a.source) and a.target.startswith(VIEW_PACKAGES)]


def package_cycles(found: list[Arrow]) -> list[list[str]]:
    """Groups of packages that reach each other through imports (strongly connected, more than one)."""
    graph: dict[str, set[str]] = {}
    for a in found:
        if a.source in ENTRY_POINTS or a.target in ENTRY_POINTS:
            continue
        src, dst = package(a.source), package(a.target)
        if src != dst:
            graph.setdefault(src, set()).add(dst)
            graph.setdefault(dst, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def borrowed_privates(found: list[Arrow], sources: dict[str, str]) -> list[str]:
    """Imports of another module's ``_private`` names, and ``module._private`` reached through an imported module."""
    problems = [
        f"{a.source}:{a.line} imports {name} from {a.target}"
        for a in found
        for name in a.names
        if name.startswith("_") and not name.startswith("__") and a.target != a.source
    ]
    for source, text in sources.items():
        tree = ast.parse(text)
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("workbench") and a.asname:
                        aliases[a.asname] = a.name
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("workbench"):
                for a in node.names:
                    if f"{node.module}.{a.name}" in sources:
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                problems.append(f"{source}:{node.lineno} reaches {aliases[node.value.id]}.{node.attr}")
    return sorted(problems)


def workbench_sources() -> dict[str, str]:
    return {module_name(p): p.read_text(encoding="utf-8") for p in sorted(ROOT.rglob("*.py"))}


# --- the code as it is ------------------------------------------------------------------


def test_no_engine_module_imports_the_views_even_lazily():
    bad = engine_to_view(arrows(workbench_sources()))
    assert bad == [], "engine -> view imports: " + "; ".join(f"{a.source}:{a.line} -> {a.target}" for a in bad)


def test_no_two_packages_import_each_other():
    assert package_cycles(arrows(workbench_sources())) == []


def test_no_module_borrows_another_modules_private_names():
    sources = workbench_sources()
    assert borrowed_privates(arrows(sources), sources) == []


def test_the_graph_sees_the_real_arrows():
    found = arrows(workbench_sources())
    edges = {(package(a.source), package(a.target)) for a in found}
    # the views read engine results, and the Trainer reads checkpoints: arrows the reader must see
    assert ("workbench.ui", "workbench.explain") in edges
    assert ("workbench.ui", "workbench.training") in edges
    assert len(found) > 100


# --- each check can fail -----------------------------------------------------------------

_FAKE = {
    "workbench.explain.attention": "def to_bertviz(r):\n    from workbench.ui.bertviz_bridge import show\n",
    "workbench.ui.bertviz_bridge": "from workbench.explain.attention import AttentionResult\n",
    "workbench.training.launch": "def f():\n    from workbench.explain.recorder import ProbeRecorder\n",
    "workbench.explain.recorder": "from workbench.training.events import Callback\n",
    "workbench.training.events": "x = 1\n",
    "workbench.explain.generate": "from workbench.explain.probe import _check_text, fill_mask\n",
    "workbench.explain.probe": "def _check_text(t): ...\ndef fill_mask(): ...\n",
    "workbench.compress.formats": "from workbench import models\nx = models._AUTO_CLASSES\n",
    "workbench.models": "y = 1\n",
}


def test_a_lazy_engine_to_view_import_is_caught():
    bad = engine_to_view(arrows(_FAKE))
    assert [(a.source, a.target, a.line) for a in bad] == [
        ("workbench.explain.attention", "workbench.ui.bertviz_bridge", 2)
    ]


def test_a_cycle_between_packages_is_caught():
    engine_only = {name: text for name, text in _FAKE.items() if not name.startswith("workbench.ui")}
    assert package_cycles(arrows(engine_only)) == [["workbench.explain", "workbench.training"]]
    # with the view imported by the engine, the view joins the cycle too
    assert package_cycles(arrows(_FAKE)) == [["workbench.explain", "workbench.training", "workbench.ui"]]


def test_a_borrowed_private_name_is_caught_both_ways():
    found = borrowed_privates(arrows(_FAKE), _FAKE)
    assert found == [
        "workbench.compress.formats:2 reaches workbench.models._AUTO_CLASSES",
        "workbench.explain.generate:1 imports _check_text from workbench.explain.probe",
    ]
