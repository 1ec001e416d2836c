"""Public names a package exports lazily: imported on first use, so ``import workbench`` starts fast."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, MutableMapping
from typing import Any

__all__ = ["load_export"]


def load_export(
    package: str, exports: Mapping[str, str | tuple[str, str]], namespace: MutableMapping[str, Any], name: str
) -> Any:
    """The value of ``package.name``, imported from the module ``exports`` names for it, then kept in ``namespace``.

    An entry is a module (``"workbench.models"``, or ``"config"`` inside ``package``) or a
    ``(module, attribute)`` pair where the attribute has another name. Raises AttributeError for a
    name the table does not have, as a module's own attribute lookup does.
    """
    target = exports.get(name)
    if target is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    module, attribute = target if isinstance(target, tuple) else (target, name)
    if not module.startswith("workbench"):
        module = f"{package}.{module}"
    value = getattr(importlib.import_module(module), attribute)
    namespace[name] = value
    return value
