"""``load_model``: a registry name, a preset, a folder or a hub id in; a ``ModelBundle`` out."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from workbench import assets
from workbench.errors import ModelLoadError
from workbench.models.bundle import BUNDLE_FILE, ModelBundle
from workbench.models.gguf import smollm2_folder
from workbench.models.hf import AUTO_CLASSES, KINDS, ModelKind, kind_from_config, quiet_transformers

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from workbench.data.corpus import Corpus

__all__ = ["MODEL_NAMES", "PRESETS", "load_model"]

PRESETS = ("tiny-bert", "tiny-gpt")
MODEL_NAMES = ("minilm", "smollm2-135m", *PRESETS)


def load_model(
    name_or_path: str | os.PathLike[str],
    *,
    kind: ModelKind | None = None,
    num_labels: int | None = None,
    label_names: Sequence[str] | None = None,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    device: torch.device | str | int | None = None,
    corpus: Corpus | str | os.PathLike[str] | Sequence[str] | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    **preset_options: int,
) -> ModelBundle:
    """Load a model and its tokenizer; return a ``ModelBundle``.

    ``name_or_path`` is a registry name (``minilm``, ``smollm2-135m``), a preset
    (``tiny-bert``, ``tiny-gpt``: built from config, tokenizer trained on ``corpus``, default
    Shakespeare), a local Hugging Face folder, or a hub id (``org/name``) where a hub is
    reachable. ``kind`` picks the head (``encoder``, ``masked-lm``, ``causal-lm``,
    ``classifier``); a classifier gets a fresh head with ``num_labels`` or ``label_names``.
    Raises ``ModelLoadError`` with a sentence when the name, folder or kind does not fit.

    Example::

        clf = load_model("minilm", kind="classifier", label_names=["negative", "positive"])
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
    common: dict[str, Any] = {"trust_remote_code": trust_remote_code, "use_safetensors": True}  # never unpickle
    if attn_implementation:
        common["attn_implementation"] = attn_implementation

    if name in PRESETS:
        from workbench.models.presets import build_preset

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
        folder = smollm2_folder()
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


def _saved_kind(folder: Path, meta: dict[str, Any]) -> ModelKind | None:
    """The kind ``workbench.json`` records, checked; None where the folder has no such file."""
    saved = meta.get("kind")
    if saved is None:
        return None
    if saved not in KINDS:
        raise ModelLoadError(
            f"{folder / BUNDLE_FILE} names the kind {saved!r}, which is not one of: {', '.join(KINDS)}."
        )
    return cast("ModelKind", saved)


def _from_folder(
    folder: Path,
    kind: ModelKind | None,
    labels: list[str] | None,
    common: dict[str, Any],
    *,
    name: str,
    source: str,
) -> ModelBundle:
    import transformers

    if not folder.is_dir():
        raise ModelLoadError(f"{folder} is a file, not a model folder; give the folder that holds config.json.")
    meta: dict[str, Any] = {}
    if (folder / BUNDLE_FILE).exists():
        meta = json.loads((folder / BUNDLE_FILE).read_text())
        name, source = meta.get("name", name), meta.get("source", source)
    recorded = _saved_kind(folder, meta)
    compression = (meta.get("extra") or {}).get("compression")
    if compression:  # quantized, pruned or exported: its own format
        from workbench.models.compressed import load_compressed

        if recorded is None:
            raise ModelLoadError(f"{folder / BUNDLE_FILE} records a compressed model but not its kind; save it again.")
        if kind not in (None, recorded):
            raise ModelLoadError(f"{folder} holds a compressed {recorded} model; it loads only as that.")
        compressed, tok = load_compressed(folder, recorded, compression, common)
        return ModelBundle(compressed, tok, recorded, name, source, extra=meta["extra"])
    _check_folder(folder)
    try:
        config = transformers.AutoConfig.from_pretrained(folder, trust_remote_code=common["trust_remote_code"])
    except (ValueError, OSError) as e:
        raise ModelLoadError(f"{folder} has a config.json that transformers cannot read ({_first_line(e)}).") from None
    saved_kind = recorded or kind_from_config(config)
    kind = kind or saved_kind
    kwargs = dict(common)
    if kind == "classifier" and labels is not None:
        kwargs.update(
            num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)}
        )
    elif kind == "classifier" and saved_kind != "classifier":
        kwargs.update(num_labels=2)
    auto = getattr(transformers, AUTO_CLASSES[kind])
    try:
        with quiet_transformers():
            model = auto.from_pretrained(folder, **kwargs)
        tok = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=common["trust_remote_code"])
    except ValueError as e:
        raise ModelLoadError(f"{name} cannot load as {kind!r}: {_first_line(e)}") from None
    if kind == "classifier" and tok.pad_token is None:
        tok.pad_token = tok.eos_token
        model.config.pad_token_id = tok.pad_token_id
    heads = {}
    if kind in ("encoder", "masked-lm"):  # the heads read an encoder's states; a classifier or causal LM has none
        from workbench.models.objective_heads import read_heads

        heads = read_heads(folder, int(config.hidden_size))
    return ModelBundle(model, tok, kind, name, source, extra=meta.get("extra", {}), heads=heads)


def _from_hub(name: str, kind: ModelKind | None, labels: list[str] | None, common: dict[str, Any]) -> ModelBundle:
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
        kind = kind or kind_from_config(config)
        kwargs = dict(common)
        if kind == "classifier":
            names = labels or ["LABEL_0", "LABEL_1"]
            kwargs.update(num_labels=len(names), id2label=dict(enumerate(names)))
        model = getattr(transformers, AUTO_CLASSES[kind]).from_pretrained(name, **kwargs)
        tok = transformers.AutoTokenizer.from_pretrained(name, trust_remote_code=common["trust_remote_code"])
    except OSError as e:
        raise ModelLoadError(
            f"Could not load {name!r} from the model hub ({_first_line(e)}); check the id and the "
            "network, or download the model elsewhere and pass its folder."
        ) from None
    return ModelBundle(model, tok, kind, name, f"hub:{name}")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__
