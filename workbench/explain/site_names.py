"""The names of the places inside a model: :class:`Site` (a kind, a layer, a head) and what a writer is.

``sites.py`` finds each site in a model's module tree and hooks it; this module only names them, so
results and views can hold sites without importing torch hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import torch

__all__ = ["SITE_KINDS", "Site", "SiteInfo", "SiteKind", "Writer"]

SiteKind = Literal["embed", "resid_pre", "attn_out", "head", "mlp_out", "resid_post"]
SITE_KINDS: tuple[SiteKind, ...] = get_args(SiteKind)

# A writer gets the site's activation (``(batch, positions, hidden)``; a head's ``(batch, positions, head_dim)``)
# and returns it changed, or ``None`` to leave it as it is (recording returns ``None``).
Writer = Callable[[torch.Tensor], "torch.Tensor | None"]


@dataclass(frozen=True, order=True)
class Site:
    """One place in the model: ``Site("resid_post", 3)``, ``Site("head", 3, 5)``, ``Site("embed")``."""

    kind: SiteKind
    layer: int = 0
    head: int | None = None

    @property
    def name(self) -> str:
        """``resid_post.3``, ``head.3.5``, ``embed``: the name :func:`parse_sites` reads back."""
        if self.kind == "embed":
            return "embed"
        return f"{self.kind}.{self.layer}" + (f".{self.head}" if self.head is not None else "")

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class SiteInfo:
    """A site with the shape of its activation for one text: ``(positions, width)``, ``width`` per token."""

    site: Site
    width: int
    module: str  # the Hugging Face module the hook sits on

    def __repr__(self) -> str:
        return f"{self.site.name:<16} (positions, {self.width})  on {self.module}"
