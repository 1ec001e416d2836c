"""``ModelBundle``: a model, its tokenizer and what the workbench knows about them; saved atomically."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import ModelLoadError
from workbench.models.hf import ModelKind, quiet_transformers

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

    from workbench.models.onnx import OnnxModel

__all__ = ["BUNDLE_FILE", "CAUSAL_MODEL_TYPES", "ModelBundle", "replace_dir"]

BUNDLE_FILE = "workbench.json"  # beside the weights: kind, name, source and extra of a saved bundle
CAUSAL_MODEL_TYPES = ("llama", "gpt2", "mistral", "qwen2", "gpt_neox", "phi3")


@dataclass
class ModelBundle:
    """A model with its tokenizer and what the workbench knows about it.

    ``kind`` is one of ``encoder``, ``masked-lm``, ``causal-lm``, ``classifier``; ``source``
    says where it came from (``asset:minilm``, ``preset:tiny-bert``, ``folder:/path``, ``hub:org/name``).
    ``extra`` holds what a saved bundle carries besides (``compression``: what was done to it, ``distillation``:
    the teacher and the layers a student kept). ``heads`` are the pretraining objectives' own heads
    (``next-sentence``, ``sentence-order``, ``replaced-token``; see ``objective_heads``), saved beside the weights.
    """

    model: PreTrainedModel | OnnxModel
    tokenizer: PreTrainedTokenizerBase
    kind: ModelKind
    name: str
    source: str
    extra: dict[str, Any] = field(default_factory=dict)
    heads: dict[str, torch.nn.Module] = field(default_factory=dict)

    @property
    def config(self) -> PretrainedConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
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
        id2label: dict[Any, str] = dict(self.model.config.id2label or {})  # int keys; str after a JSON round trip
        return [str(id2label[i]) for i in range(len(id2label))]

    @property
    def is_causal(self) -> bool:
        return (
            self.kind == "causal-lm"
            or bool(getattr(self.model.config, "is_decoder", False))
            or (self.model.config.model_type in CAUSAL_MODEL_TYPES)
        )

    @property
    def compression(self) -> dict[str, Any]:
        """What ``workbench.compress`` did to this bundle (method and settings); ``{}`` for an original."""
        return dict(self.extra.get("compression") or {})

    def shares_vocabulary(self, other: ModelBundle) -> bool:
        """True when both tokenizers give the same id to every token, so the two models read (and, as masked LMs,
        write) the same ids: what a compressed copy or a distilled student must share with its original."""
        return self.tokenizer is other.tokenizer or self.tokenizer.get_vocab() == other.tokenizer.get_vocab()

    def to(self, device: torch.device | str | int) -> ModelBundle:
        self.model.to(device)  # type: ignore[arg-type]  # transformers types its wrapped .to() as unbound
        for head in self.heads.values():
            head.to(device)
        return self

    def to_dict(self) -> dict[str, Any]:
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
            "objective_heads": sorted(self.heads),
        }

    def __repr__(self) -> str:
        d = self.to_dict()
        return (
            f"ModelBundle({d['name']!r}, kind={d['kind']!r}, {d['model_type']} "
            f"{d['layers']}x{d['heads']} heads, {d['parameters'] / 1e6:.1f}M parameters, source={d['source']!r})"
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write weights (safetensors), config, tokenizer and ``workbench.json`` to a folder.

        The folder is written under a temporary name and renamed when complete, so an
        interrupted save never leaves a half-written model; an earlier save at the same path is
        replaced only after the new one is complete. Returns the folder. Raises
        ``ModelLoadError`` when the folder holds other files.
        """
        dest = Path(path).expanduser().resolve()
        if dest.exists() and not (dest / BUNDLE_FILE).exists() and any(dest.iterdir()):
            raise ModelLoadError(
                f"{dest} already holds files that are not a saved workbench model; "
                "choose an empty or new folder so nothing there is overwritten."
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
        try:
            self.write_files(tmp)
            replace_dir(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest

    def write_files(self, folder: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """Write the bundle's files into an existing folder, with no atomicity (``save`` adds that).

        ``state_dict`` replaces the model's own weights (a sharded model's, gathered for saving).
        A compressed bundle (``workbench.compress``) is written in its compact form.
        """
        from workbench.models.onnx import OnnxModel

        if self.compression or isinstance(self.model, OnnxModel):
            from workbench.models.compressed import write_compressed

            write_compressed(self, Path(folder))
        else:
            with quiet_transformers():
                self.model.save_pretrained(folder, safe_serialization=True, state_dict=state_dict)
                self.tokenizer.save_pretrained(folder)
            from workbench.models.objective_heads import write_heads

            write_heads(Path(folder), self.heads)
        meta = {"kind": self.kind, "name": self.name, "source": self.source, "extra": self.extra}
        (Path(folder) / BUNDLE_FILE).write_text(json.dumps(meta, indent=2))


def replace_dir(new: Path, dest: Path) -> None:
    """Put the folder ``new`` at ``dest``; the old ``dest`` goes only once the new one is in place."""
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
        os.replace(new, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, dest)
