"""Sites: every named place inside a model where an activation can be read or written.

A site is a kind and a layer (and a head, for one head's output):

* ``embed``       the token embeddings (before positions are added, where the model adds them)
* ``resid_pre``   the residual stream entering layer ``i``
* ``attn_out``    what layer ``i``'s attention adds (its output projection's output)
* ``head``        head ``h`` of layer ``i``, before the output projection mixes the heads
* ``mlp_out``     what layer ``i``'s MLP adds (BERT: its output dense, before the residual and norm)
* ``resid_post``  the residual stream leaving layer ``i``

Reading and writing go through forward hooks on the real Hugging Face modules (never a
re-implementation of the model), inside :func:`hooked`, which removes every hook on exit,
exceptions included. A hook that returns nothing changes nothing: the logits stay bit-identical.

Example::

    with hooked(bundle.model, {Site("resid_post", 3): lambda x: x * 0}):   # ablate layer 3's output
        logits = bundle.model(**enc).logits
    # record(bundle, text, sites) in activations.py reads them without writing
"""

from __future__ import annotations

import contextlib
import re
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from workbench.errors import ProbeError
from workbench.explain.site_names import SITE_KINDS, Site, SiteInfo, SiteKind, Writer
from workbench.models.hf import attention_lock

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = [
    "SITE_KINDS",
    "Site",
    "SiteInfo",
    "SiteKind",
    "SiteMap",
    "Writer",
    "hooked",
    "list_sites",
    "parse_sites",
    "site_map",
    "start_at",
]

_ATTENTION_NAMES = ("self_attn", "attn", "attention", "self_attention")
_OUT_PROJECTIONS = ("o_proj", "Wo", "c_proj", "out_proj", "dense", "output.dense", "out_lin")


class SiteMap:
    """Where each site lives in one model's module tree, found once per model.

    Raises ``ProbeError`` with a sentence for an architecture whose layers, attention or MLP it cannot find.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model_name = type(model).__name__  # no reference to the model: the cache must not keep it alive
        self.layer_output_length: int | None = None  # a layer's output: a tensor (0) or a tuple of this length
        config = getattr(model, "config", None)
        self.num_layers = int(getattr(config, "num_hidden_layers", 0) or 0)
        self.num_heads = int(getattr(config, "num_attention_heads", 0) or 0)
        self.layers_name, self.layers = self._find_layers(model)
        embeddings: Any = model.get_input_embeddings()  # type: ignore[operator]
        self.embeddings: torch.nn.Module = embeddings
        self.embeddings_name = next(n for n, m in model.named_modules() if m is embeddings)
        self.hidden = int(getattr(config, "hidden_size", 0) or embeddings.embedding_dim)
        self._parts = [self._find_parts(i, layer) for i, layer in enumerate(self.layers)]
        out_proj = self._parts[0][1]
        self.head_dim = _in_features(out_proj) // self.num_heads

    def _find_layers(self, model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList]:
        found = [
            (name, module)
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.ModuleList) and len(module) == self.num_layers
        ]
        if not found or self.num_layers == 0 or self.num_heads == 0:
            raise ProbeError(
                f"Cannot find the layers of {type(model).__name__}: sites work on BERT/MiniLM, ModernBERT, "
                "Llama/SmolLM2 and GPT-2 style models, whose config names num_hidden_layers."
            )
        name, layers = min(found, key=lambda pair: pair[0].count("."))  # the outermost list of blocks
        return name, layers

    def _find_parts(self, index: int, layer: torch.nn.Module) -> tuple[str, torch.nn.Module, str, torch.nn.Module]:
        """(name, output projection, name, MLP output module) of one layer."""
        children = dict(layer.named_children())
        attention = next((children[n] for n in _ATTENTION_NAMES if n in children), None)
        attention_name = next((n for n in _ATTENTION_NAMES if n in children), "")
        out_proj, out_name = None, ""
        if attention is not None:
            modules = dict(attention.named_modules())
            out_name = next((n for n in _OUT_PROJECTIONS if n in modules and _in_features(modules[n]) > 0), "")
            out_proj = modules.get(out_name)
        mlp: torch.nn.Module | None
        if "mlp" in children:
            mlp, mlp_name = children["mlp"], "mlp"
        else:  # BERT: intermediate (dense + activation), then output (dense, dropout, residual, norm)
            mlp = dict(layer.named_modules()).get("output.dense")
            mlp_name = "output.dense"
        if out_proj is None or mlp is None:
            raise ProbeError(
                f"Cannot find the attention output projection or the MLP in layer {index} of "
                f"{self.model_name}; sites work on BERT/MiniLM, ModernBERT, Llama and GPT-2 style models."
            )
        prefix = f"{self.layers_name}.{index}"
        return f"{prefix}.{attention_name}.{out_name}", out_proj, f"{prefix}.{mlp_name}", mlp

    # ------------------------------------------------------------------------------- names and checks

    def all_sites(self, kinds: Sequence[SiteKind] = SITE_KINDS) -> list[Site]:
        """Every site of the given kinds, in the model's order (layer by layer)."""
        out: list[Site] = [Site("embed")] if "embed" in kinds else []
        for layer in range(self.num_layers):
            for kind in ("resid_pre", "attn_out", "head", "mlp_out", "resid_post"):
                if kind not in kinds:
                    continue
                if kind == "head":
                    out.extend(Site("head", layer, h) for h in range(self.num_heads))
                else:
                    out.append(Site(kind, layer))
        return out

    def check(self, site: Site) -> Site:
        """``site`` when this model has it; ``ProbeError`` naming the range otherwise."""
        if site.kind not in SITE_KINDS:
            raise ProbeError(f"Unknown site kind {site.kind!r}; the kinds are: {', '.join(SITE_KINDS)}.")
        if site.kind != "embed" and not 0 <= site.layer < self.num_layers:
            raise ProbeError(
                f"Layer {site.layer} is out of range: {self.model_name} has layers 0..{self.num_layers - 1}."
            )
        if site.kind == "head" and (site.head is None or not 0 <= site.head < self.num_heads):
            raise ProbeError(f"Head {site.head} is out of range: each layer has heads 0..{self.num_heads - 1}.")
        return site

    def width(self, site: Site) -> int:
        return self.head_dim if site.kind == "head" else self.hidden

    def module_name(self, site: Site) -> str:
        if site.kind == "embed":
            return str(self.embeddings_name)
        out_name, _, mlp_name, _ = self._parts[site.layer]
        if site.kind in ("resid_pre", "resid_post"):
            return f"{self.layers_name}.{site.layer}"
        return {"attn_out": out_name, "head": out_name, "mlp_out": mlp_name}[site.kind]

    # ------------------------------------------------------------------------------- hooks

    def note_layer_output(self, _module: torch.nn.Module, _args: tuple[Any, ...], output: Any) -> None:
        """A forward hook: remember whether a layer returns a tensor or a tuple (for :func:`start_at`)."""
        self.layer_output_length = len(output) if isinstance(output, tuple) else 0

    def attach(self, site: Site, writer: Writer) -> torch.utils.hooks.RemovableHandle:
        """Hook ``writer`` onto ``site``; the caller removes the handle (:func:`hooked` does)."""
        if site.kind == "resid_pre":
            return self.layers[site.layer].register_forward_pre_hook(_pre_hook(writer), with_kwargs=True)
        if site.kind == "head":
            _, out_proj, _, _ = self._parts[site.layer]
            return out_proj.register_forward_pre_hook(
                _head_hook(writer, site.head or 0, self.head_dim), with_kwargs=True
            )
        module = {
            "embed": self.embeddings,
            "resid_post": self.layers[site.layer],
            "attn_out": self._parts[site.layer][1],
            "mlp_out": self._parts[site.layer][3],
        }[site.kind]
        return module.register_forward_hook(_post_hook(writer))


def _in_features(module: torch.nn.Module) -> int:
    if isinstance(getattr(module, "in_features", None), int):  # a Linear, also one quantized to int8
        return int(module.in_features)  # type: ignore[arg-type]
    weight = getattr(module, "weight", None)
    if weight is not None and weight.dim() == 2 and type(module).__name__ == "Conv1D":  # GPT-2: (in, out)
        return int(weight.shape[0])
    return 0


def _hidden_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor, bool]:
    """The hidden state a layer was called with, and whether it came as a keyword."""
    if args:
        return args[0], False
    return kwargs["hidden_states"], True


def _pre_hook(writer: Writer) -> Callable[..., Any]:
    def hook(_module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        hidden, by_name = _hidden_of(args, kwargs)
        new = writer(hidden)
        if new is None:
            return None
        if by_name:
            return args, {**kwargs, "hidden_states": new}
        return (new, *args[1:]), kwargs

    return hook


def _head_hook(writer: Writer, head: int, head_dim: int) -> Callable[..., Any]:
    cols = slice(head * head_dim, (head + 1) * head_dim)

    def hook(_module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        mixed, by_name = (args[0], False) if args else (kwargs["input"], True)  # (batch, n, heads * head_dim)
        new = writer(mixed[..., cols])  # (batch, n, head_dim)
        if new is None:
            return None
        mixed = mixed.clone()
        mixed[..., cols] = new
        if by_name:
            return args, {**kwargs, "input": mixed}
        return (mixed, *args[1:]), kwargs

    return hook


def _post_hook(writer: Writer) -> Callable[..., Any]:
    def hook(_module: torch.nn.Module, _args: tuple[Any, ...], output: Any) -> Any:
        hidden = output[0] if isinstance(output, tuple) else output
        new = writer(hidden)
        if new is None:
            return None
        return (new, *output[1:]) if isinstance(output, tuple) else new

    return hook


_MAPS: weakref.WeakKeyDictionary[torch.nn.Module, SiteMap] = weakref.WeakKeyDictionary()
_MAPS_GUARD = threading.Lock()


def site_map(model: torch.nn.Module) -> SiteMap:
    """The :class:`SiteMap` of ``model``, found once and kept while the model lives (and no longer)."""
    with _MAPS_GUARD:
        found = _MAPS.get(model)
        if found is None:
            found = _MAPS[model] = SiteMap(model)
        return found


def _only_in(thread: int, writer: Writer) -> Writer:
    """``writer``, firing only in the thread that hooked it: a training step or another cell's forward of the
    same model in another thread passes through untouched."""

    def in_thread(x: torch.Tensor) -> torch.Tensor | None:
        return writer(x) if threading.get_ident() == thread else None

    return in_thread


@contextlib.contextmanager
def hooked(model: torch.nn.Module, writers: Mapping[Site, Writer] | Sequence[tuple[Site, Writer]]) -> Iterator[SiteMap]:
    """Within the block, each writer runs on its site's activation in every forward of ``model``.

    Several writers may share a site; they run in the order given. Writers fire only in the calling
    thread, and the block holds the model's ``attention_lock``, so explain calls in other threads
    neither see these hooks nor interleave theirs. Every hook is removed on exit, also when the block
    raises. Raises ``ProbeError`` for a site the model does not have.
    """
    found = site_map(model)
    pairs = list(writers.items()) if isinstance(writers, Mapping) else list(writers)
    for site, _ in pairs:
        found.check(site)
    thread = threading.get_ident()
    handles: list[torch.utils.hooks.RemovableHandle] = []
    with attention_lock(model):
        try:
            handles.append(found.layers[-1].register_forward_hook(found.note_layer_output))
            for site, writer in pairs:
                handles.append(found.attach(site, _only_in(thread, writer)))
            yield found
        finally:
            for handle in handles:
                handle.remove()


@contextlib.contextmanager
def start_at(model: torch.nn.Module, layer: int, resid_pre: torch.Tensor) -> Iterator[None]:
    """Within the block, a forward of ``model`` skips layers ``0..layer-1`` and enters layer ``layer`` with
    ``resid_pre`` (``(batch, positions, hidden)``, e.g. a cached run's residual stream there).

    The embeddings, masks and position embeddings are still made as usual (cheap); the skipped layers
    return ``resid_pre`` at once, in the form the layer returns (a tensor, or a tuple as in Falcon or
    Bloom: known from a run under :func:`hooked`). Hooks on the skipped layers' insides do not fire.
    Forwards from other threads run the layers as usual. The layers are restored on exit, exceptions
    included; the block holds the model's ``attention_lock``.
    """
    found = site_map(model)
    if not 0 <= layer <= found.num_layers:
        raise ProbeError(f"Layer {layer} is out of range: start at a layer in 0..{found.num_layers}.")
    length = found.layer_output_length or 0
    given = (resid_pre, *([None] * (length - 1))) if length else resid_pre
    thread = threading.get_ident()
    with attention_lock(model):
        skipped = list(found.layers[:layer])
        before = [block.__dict__.get("forward") for block in skipped]  # e.g. accelerate's own wrapper
        for block, own in zip(skipped, before, strict=True):
            run = own if own is not None else block.forward

            def skip(*args: Any, _run: Callable[..., Any] = run, **kwargs: Any) -> Any:
                return given if threading.get_ident() == thread else _run(*args, **kwargs)

            block.forward = skip  # an instance attribute shadows the class's forward
        try:
            yield
        finally:
            for block, own in zip(skipped, before, strict=True):
                if own is None:
                    del block.forward
                else:
                    block.forward = own


_NAME = re.compile(r"^(embed|resid_pre|attn_out|head|mlp_out|resid_post)(?:\.(\d+))?(?:\.(\d+))?$")


def parse_sites(model: torch.nn.Module, spec: object) -> list[Site]:
    """Sites from a spec: a :class:`Site`, a name (``"resid_post.3"``, ``"head.3.5"``), a kind for every
    layer (``"resid_post"``, ``"head"``: all heads), a layer's kind (``"head.3"``: its heads), or a list of
    these. Raises ``ProbeError`` with a sentence for an unknown name or a layer or head out of range."""
    found = site_map(model)
    items = [spec] if isinstance(spec, (str, Site)) else spec
    if not isinstance(items, (list, tuple)) or not items:
        raise ProbeError(
            f"Sites are a site name (e.g. 'resid_post.3', 'head.3.5'), a kind ({', '.join(SITE_KINDS)}), "
            f"or a non-empty list of them; got {spec!r}."
        )
    out: list[Site] = []
    for item in items:
        if isinstance(item, Site):
            out.append(found.check(item))
            continue
        match = _NAME.match(item) if isinstance(item, str) else None
        if match is None:
            raise ProbeError(
                f"Unknown site {item!r}; a site is written kind.layer (e.g. 'resid_post.3') or kind.layer.head "
                f"('head.3.5'), and the kinds are: {', '.join(SITE_KINDS)}."
            )
        kind, layer, head = match.group(1), match.group(2), match.group(3)
        if kind == "embed":
            out.append(Site("embed"))
        elif layer is None:
            out.extend(found.all_sites((kind,)))  # type: ignore[arg-type]
        elif kind == "head" and head is None:
            out.extend(found.check(Site("head", int(layer), h)) for h in range(found.num_heads))
        elif kind != "head" and head is not None:
            raise ProbeError(f"Only head sites take a head index; write {kind}.{layer}, not {item!r}.")
        else:
            out.append(found.check(Site(kind, int(layer), None if head is None else int(head))))  # type: ignore[arg-type]
    return list(dict.fromkeys(out))  # in order, each once


def list_sites(bundle: ModelBundle, kinds: Sequence[SiteKind] = SITE_KINDS) -> list[SiteInfo]:
    """Every site of ``bundle``'s model with its width and the module it is read from.

    Example: ``list_sites(load_model("smollm2-135m"), ["resid_post"])`` lists 30 sites, each ``(positions, 576)``.
    """
    found = site_map(bundle.model)
    unknown = [k for k in kinds if k not in SITE_KINDS]
    if unknown:
        raise ProbeError(f"Unknown site kinds {unknown}; the kinds are: {', '.join(SITE_KINDS)}.")
    return [SiteInfo(s, found.width(s), found.module_name(s)) for s in found.all_sites(kinds)]
