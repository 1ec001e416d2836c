"""The curated top-level API: what ``__all__`` lists, the lazy table serves and editors are shown agree."""

from __future__ import annotations

import ast
import inspect

import workbench


def _type_checking_names() -> set[str]:
    """Names bound by the ``if TYPE_CHECKING:`` block of ``workbench/__init__.py``."""
    tree = ast.parse(inspect.getsource(workbench))
    block = next(
        node for node in tree.body if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    )
    return {
        alias.asname or alias.name for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names
    }


def test_all_lists_exactly_the_lazily_exported_names():
    assert workbench.__all__ == sorted(workbench._EXPORTS)


def test_editors_see_every_exported_name_and_no_other():
    assert _type_checking_names() == set(workbench.__all__)


def test_every_exported_name_resolves_to_what_its_module_defines():
    for name in workbench.__all__:
        target = workbench._EXPORTS[name]
        module, attr = target if isinstance(target, tuple) else (target, name)
        assert getattr(workbench, name) is getattr(__import__(module, fromlist=[attr]), attr), name
