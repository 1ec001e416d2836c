"""The memory budget of explain calls: one number per kernel, checked before a call allocates.

A notebook kernel holds what the user cares about (a trained model, a run's history); an
explain call that runs out of memory kills it. So every explain call estimates what it needs
from the model's shape and the text's length *before* allocating, and answers with one sentence
when that is more than its budget: what it needs, and what to do.

Example::

    from workbench.explain import set_memory_budget, attention
    set_memory_budget(2048)                 # MB, for every later call in this kernel
    attention(bundle, long_text)            # within 2 GB, or a MemoryBudgetError saying what it needs
    attention(bundle, long_text, memory_mb=4096)   # this call only
"""

from __future__ import annotations

import threading

from workbench.errors import MemoryBudgetError

__all__ = [
    "DEFAULT_MEMORY_MB",
    "MB",
    "MemoryBudgetError",
    "budget_bytes",
    "memory_budget",
    "require",
    "set_memory_budget",
]

DEFAULT_MEMORY_MB = 1024

_lock = threading.Lock()
_budget_mb = DEFAULT_MEMORY_MB
MB = 2**20


def _check(memory_mb: object) -> int:
    if not isinstance(memory_mb, int) or isinstance(memory_mb, bool) or memory_mb < 1:
        raise MemoryBudgetError(f"memory_mb must be a positive whole number of megabytes, got {memory_mb!r}.")
    return memory_mb


def set_memory_budget(memory_mb: int) -> int:
    """Set the budget (MB) of every later explain call in this process that is not given its own; returns the old.

    Raises ``MemoryBudgetError`` when ``memory_mb`` is not a positive whole number (the old budget stays)."""
    global _budget_mb
    memory_mb = _check(memory_mb)
    with _lock:
        old, _budget_mb = _budget_mb, memory_mb
    return old


def memory_budget(memory_mb: int | None = None) -> int:
    """The budget in MB a call works within: its own ``memory_mb`` when given, else the kernel's.

    Raises ``MemoryBudgetError`` when ``memory_mb`` is given and is not a positive whole number."""
    return _budget_mb if memory_mb is None else _check(memory_mb)


def budget_bytes(memory_mb: int | None = None) -> int:
    """``memory_budget(memory_mb)`` in bytes."""
    return memory_budget(memory_mb) * MB


def require(needed: float, memory_mb: int | None, what: str, advice: str) -> None:
    """Raise ``MemoryBudgetError`` when ``needed`` bytes are more than the budget.

    ``what`` names the call and its input ("attention on 8,192 tokens of smollm2-135m");
    ``advice`` is what to do besides a larger budget ("a shorter text").
    """
    budget = memory_budget(memory_mb)
    needed_mb = int(-(-needed // MB))
    if needed_mb > budget:
        raise MemoryBudgetError(
            f"{what[0].upper()}{what[1:]} needs about {needed_mb:,} MB, more than its memory budget of {budget:,} MB: "
            f"use {advice}, or raise the budget (memory_mb={_round_up(needed_mb)}, or "
            f"workbench.explain.set_memory_budget({_round_up(needed_mb)}) for the whole kernel)."
        )


def _round_up(mb: int) -> int:
    step = 256 if mb < 4096 else 1024
    return -(-mb // step) * step
