"""The small heads that pretraining objectives put on an encoder, saved beside its weights.

BERT's next-sentence head and ALBERT's sentence-order head read the first token of a pair of segments
(``PairHead``: a tanh pooler and two logits); ELECTRA's discriminator reads every token (``ReplacedTokenHead``:
one logit per token, "this token was replaced"). Transformers has no such heads for every encoder (ModernBERT
has none), so the workbench keeps its own: a bundle carries them in ``ModelBundle.heads`` under the name of
the task that trained them, and ``save`` writes them into ``heads.safetensors``, which ``load_model`` reads
back. The encoder's own files stay an ordinary model folder, so a classifier can be fine-tuned from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from workbench.errors import ModelLoadError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from workbench.models.bundle import ModelBundle

__all__ = [
    "HEADS_FILE",
    "HEAD_NAMES",
    "REPLACED_TOKEN",
    "PairHead",
    "ReplacedTokenHead",
    "encoder_of",
    "freeze_unread_pooler",
    "make_head",
    "read_heads",
    "seeded_head",
    "write_heads",
]

HEADS_FILE = "heads.safetensors"
REPLACED_TOKEN = "replaced-token"  # the task that trains ELECTRA's head, and the head's name in ``bundle.heads``
_FORMAT = "workbench-heads"


class PairHead(torch.nn.Module):
    """Two logits for a pair of segments, read at the first token: (is not next, is next) for next-sentence
    prediction, (swapped, in order) for sentence-order prediction: index 1 is always "as written"."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.dense = torch.nn.Linear(hidden, hidden)
        self.classifier = torch.nn.Linear(hidden, 2)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """``states`` ``(batch, seq, hidden)`` → logits ``(batch, 2)``."""
        pooled = torch.tanh(self.dense(states[:, 0]))  # (batch, hidden)
        logits: torch.Tensor = self.classifier(pooled)
        return logits


class ReplacedTokenHead(torch.nn.Module):
    """One logit per token: above zero, the discriminator thinks the token was put there by the generator."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.dense = torch.nn.Linear(hidden, hidden)
        self.out = torch.nn.Linear(hidden, 1)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """``states`` ``(..., hidden)`` → logits ``(...)``."""
        logits: torch.Tensor = self.out(torch.nn.functional.gelu(self.dense(states))).squeeze(-1)
        return logits


_CLASSES: dict[str, type[PairHead] | type[ReplacedTokenHead]] = {
    "next-sentence": PairHead,
    "sentence-order": PairHead,
    REPLACED_TOKEN: ReplacedTokenHead,
}
HEAD_NAMES = tuple(_CLASSES)


def make_head(name: str, hidden: int) -> torch.nn.Module:
    """A fresh head of the kind the task ``name`` trains, for states of width ``hidden``."""
    return _CLASSES[name](hidden)


def seeded_head(name: str, hidden: int, seed: int) -> torch.nn.Module:
    """``make_head`` drawn from ``seed``, the global random state untouched: one seed, one starting head."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make_head(name, hidden)


def encoder_of(bundle: ModelBundle) -> PreTrainedModel:
    """The bundle's encoder, whose last hidden states the heads read: the model itself for kind ``encoder``, the
    model under its head otherwise."""
    return cast("PreTrainedModel", bundle.model if bundle.kind == "encoder" else bundle.model.base_model)


def freeze_unread_pooler(model: torch.nn.Module) -> None:
    """Freeze a BERT encoder's pooler, which no objective head reads: a weight that gets no gradient is refused by
    DistributedDataParallel, and an optimizer would only decay it."""
    pooler = getattr(model, "pooler", None)
    if isinstance(pooler, torch.nn.Module):
        pooler.requires_grad_(False)


def write_heads(folder: Path, heads: dict[str, torch.nn.Module]) -> None:
    """Write every head into ``folder/heads.safetensors`` (nothing when there are none)."""
    if not heads:
        return
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    widths: dict[str, int] = {}
    for name, head in heads.items():
        widths[name] = int(getattr(head, "hidden"))  # noqa: B009 - every head class keeps its width
        for key, value in head.state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().to("cpu").contiguous()
    save_file(tensors, str(Path(folder) / HEADS_FILE), metadata={"format": _FORMAT, "heads": json.dumps(widths)})


def read_heads(folder: Path, hidden: int) -> dict[str, torch.nn.Module]:
    """The heads saved in ``folder`` (``{}`` where there is no heads file), each checked against ``hidden``.

    Raises ``ModelLoadError`` for a file that is not a heads file, a head the workbench does not know, or a
    head of another width than the model's."""
    path = Path(folder) / HEADS_FILE
    if not path.exists():
        return {}
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta: dict[str, Any] = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except (SafetensorError, OSError) as e:
        raise ModelLoadError(f"{path} cannot be read as safetensors ({e}); save the model again.") from None
    if meta.get("format") != _FORMAT:
        raise ModelLoadError(f"{path} is not a workbench heads file; move it away or save the model again.")
    heads: dict[str, torch.nn.Module] = {}
    for name, width in json.loads(meta.get("heads", "{}")).items():
        if name not in _CLASSES:
            raise ModelLoadError(f"{path} holds a head {name!r} this workbench does not know ({', '.join(_CLASSES)}).")
        if int(width) != hidden:
            raise ModelLoadError(
                f"{path} holds a {name!r} head for states of width {width}, but the model's are {hidden} wide; "
                "it was saved from another model."
            )
        head = make_head(name, hidden)
        prefix = f"{name}."
        head.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        heads[name] = head.eval()
    return heads
