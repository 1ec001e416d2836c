"""The activations of one text at named sites, from one plain forward of the real model.

Example::

    acts = record(bundle, "The Eiffel Tower is in", ["resid_post", "head.2.1"])
    acts["resid_post.5"]          # (positions, hidden)
    acts.stack("resid_post")      # (layers, positions, hidden)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from workbench.errors import ProbeError
from workbench.explain.inputs import check_text, encode, inference
from workbench.explain.sites import Site, SiteKind, Writer, hooked, parse_sites
from workbench.explain.tokens import TokenInfo, text_tokens

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["Activations", "record"]


@dataclass
class Activations:
    """The activations of one text at each recorded site: ``acts["resid_post.3"]`` is ``(positions, width)``."""

    model: str
    text: str
    tokens: TokenInfo
    values: dict[str, np.ndarray]  # site name -> (positions, width), float32

    def __getitem__(self, site: str | Site) -> np.ndarray:
        name = site.name if isinstance(site, Site) else site
        if name not in self.values:
            raise ProbeError(f"Site {name!r} was not recorded; this result holds: {', '.join(self.values)}.")
        return self.values[name]

    @property
    def sites(self) -> list[str]:
        return list(self.values)

    def stack(self, kind: SiteKind) -> np.ndarray:
        """Every recorded site of one kind stacked: ``(sites, positions, width)``, in the order recorded."""
        names = [n for n in self.values if n.split(".")[0] == kind]
        if not names:
            raise ProbeError(f"No {kind} site was recorded; this result holds: {', '.join(self.values)}.")
        return np.stack([self.values[n] for n in names])

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "text": self.text,
            "tokens": self.tokens.to_dict(),
            "values": {name: np.round(v, 6).tolist() for name, v in self.values.items()},
        }

    def __repr__(self) -> str:
        n = len(self.tokens.text)
        return f"Activations({self.model}, {n} tokens, {len(self.values)} sites: {', '.join(self.values)[:120]})"


def record(bundle: ModelBundle, text: str, sites: object = "resid_post") -> Activations:
    """The activations of ``text`` at ``sites`` (see :func:`parse_sites`), from one plain forward.

    Returns an :class:`Activations`; raises ``ProbeError`` for empty text, text longer than the
    model's positions, or an unknown site.
    """
    text = check_text(text, "The text to record")
    chosen = parse_sites(bundle.model, sites)
    enc = encode(bundle, text)
    kept: dict[str, torch.Tensor] = {}

    def keeper(name: str) -> Writer:
        def keep(x: torch.Tensor) -> None:
            kept[name] = x[0].detach().float().cpu()  # (positions, width)

        return keep

    with inference(bundle.model), hooked(bundle.model, [(s, keeper(s.name)) for s in chosen]):
        bundle.model(**enc)
    values = {s.name: kept[s.name].numpy() for s in chosen}
    return Activations(bundle.name, text, text_tokens(bundle, text), values)
