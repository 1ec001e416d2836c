"""How the workbench meets Hugging Face transformers: its kinds of model, their auto classes, quiet loads.

A leaf module: it imports nothing else of the workbench, so every package that loads or
builds models (``models``, ``compress``) can share it without importing each other.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, get_args

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = [
    "AUTO_CLASSES",
    "KINDS",
    "ModelKind",
    "SwitchesAttention",
    "attention_lock",
    "eager_attention",
    "kind_from_config",
    "quiet_transformers",
]

ModelKind = Literal["encoder", "masked-lm", "causal-lm", "classifier"]
KINDS: tuple[ModelKind, ...] = get_args(ModelKind)

AUTO_CLASSES: dict[ModelKind, str] = {
    "encoder": "AutoModel",
    "masked-lm": "AutoModelForMaskedLM",
    "causal-lm": "AutoModelForCausalLM",
    "classifier": "AutoModelForSequenceClassification",
}


def kind_from_config(config: PretrainedConfig) -> ModelKind:
    """The kind a saved config's architecture names (``BertForMaskedLM`` is a masked-lm); ``encoder`` otherwise."""
    arch = " ".join(getattr(config, "architectures", None) or [])
    if "ForMaskedLM" in arch or "ForPreTraining" in arch:
        return "masked-lm"
    if "ForCausalLM" in arch or "LMHeadModel" in arch:
        return "causal-lm"
    if "ForSequenceClassification" in arch:
        return "classifier"
    return "encoder"


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports inside the block (fresh heads are expected here, not news)."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    bars = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


class SwitchesAttention(Protocol):
    """A model whose attention kernel can be chosen: a ``PreTrainedModel``, or an ``OnnxModel`` (always eager)."""

    config: Any

    def set_attn_implementation(self, attn_implementation: str) -> None: ...


Switchable = TypeVar("Switchable", bound=SwitchesAttention)


_locks: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def attention_lock(model: Any) -> threading.RLock:
    """The one lock of ``model``'s attention kernel: held by every call that switches the kernel, runs the
    model and switches it back, so two threads never restore each other's kernel."""
    with _locks_guard:
        lock = _locks.get(model)
        if lock is None:
            lock = _locks[model] = threading.RLock()
        return lock


@contextlib.contextmanager
def eager_attention(model: Switchable) -> Iterator[Switchable]:
    """Switch a model to eager attention inside the block, so attention weights come back.

    SDPA and flash kernels return no weights (an empty tuple, without an error); the
    previous implementation is restored on exit, even after an exception. Holds the model's
    ``attention_lock`` for the block.
    """
    with attention_lock(model):
        before = getattr(model.config, "_attn_implementation", None) or "eager"
        if before == "eager":
            yield model
            return
        model.set_attn_implementation("eager")
        try:
            yield model
        finally:
            model.set_attn_implementation(before)
