"""How compressed bundles are saved and loaded: safetensors throughout, nothing pickled.

``workbench.compress`` makes these bundles; loading them is part of ``load_model``, so this
module lives with the loaders and ``models`` never has to import ``compress``.


- int8: each quantized layer as its int8 weight, scale, zero point and float bias;
- pruned: each pruned weight as a bitmask of its non-zeros (one bit per weight) and the
  non-zero values, so the zeros cost one bit each on disk;
- ONNX: the ``model.onnx`` file (and its weights file) beside the tokenizer and config.

Everything else is stored as in any model folder. ``load_model(folder)`` reads
``workbench.json``, builds the model from its config and fills it in.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from workbench.errors import ModelLoadError
from workbench.models.hf import AUTO_CLASSES, ModelKind, quiet_transformers
from workbench.models.onnx import OnnxModel

if TYPE_CHECKING:
    from torch.ao.nn.quantized import dynamic
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from workbench.models.bundle import ModelBundle

__all__ = ["WEIGHTS", "load_compressed", "quiet_quantization", "write_compressed", "write_weights"]

WEIGHTS = "model.safetensors"


@contextlib.contextmanager
def quiet_quantization() -> Iterator[None]:
    """PyTorch warns on every quantized tensor it makes that its int8 dtypes will move to torchao; once is news."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        yield


def _tensors_once(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors with shared storage kept once (tied embeddings); the other names point at the kept one."""
    kept: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[Any, ...], str] = {}
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        key = (value.data_ptr(), tuple(value.shape), value.dtype) if value.numel() else (name,)
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            kept[name] = value.detach().contiguous()
    return kept, aliases


def write_weights(bundle: ModelBundle, folder: Path) -> None:
    """The weights file of a bundle, compressed or not (an ONNX export keeps its own files)."""
    import safetensors.torch

    compression = bundle.compression
    method = compression.get("method")
    model = bundle.model
    if isinstance(model, OnnxModel):
        raise TypeError("An ONNX export keeps its weights in model.onnx; write_weights writes PyTorch weights only.")
    if method is None:
        with quiet_transformers():
            model.save_pretrained(folder, safe_serialization=True)
        for extra in Path(folder).glob("*.json"):  # config and generation config: not weights
            extra.unlink()
        return
    state = model.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    if method == "int8":
        for name in compression["layers"]:
            module = cast("dynamic.Linear", model.get_submodule(name))  # an int8 layer, by compression["layers"]
            weight, bias = module.weight(), module.bias()
            tensors[f"{name}.weight.int8"] = weight.int_repr()
            tensors[f"{name}.weight.scale"] = torch.tensor([weight.q_scale()], dtype=torch.float64)
            tensors[f"{name}.weight.zero_point"] = torch.tensor([weight.q_zero_point()], dtype=torch.int64)
            if bias is not None:
                tensors[f"{name}.bias"] = bias.detach()
            for key in [k for k in state if k.startswith(f"{name}.")]:
                state.pop(key)  # its packed parameters, written above in plain tensors
    elif method == "prune":
        for name in compression["layers"]:
            weight = state.pop(f"{name}.weight").detach()
            flat = weight.flatten().numpy()
            nonzero = flat != 0
            if nonzero.mean() > 31 / 32:  # the mask would cost more than the zeros save: keep it dense
                tensors[f"{name}.weight"] = weight.contiguous()
                continue
            tensors[f"{name}.weight.mask"] = torch.from_numpy(np.packbits(nonzero))
            tensors[f"{name}.weight.values"] = torch.from_numpy(flat[nonzero].copy())
            tensors[f"{name}.weight.shape"] = torch.tensor(list(weight.shape), dtype=torch.int64)
    kept, aliases = _tensors_once(state)
    tensors.update(kept)
    metadata = {"workbench_compression": method, "aliases": json.dumps(aliases)}
    safetensors.torch.save_file(tensors, str(Path(folder) / WEIGHTS), metadata=metadata)


def write_compressed(bundle: ModelBundle, folder: Path) -> None:
    """A compressed bundle's weights, config and tokenizer (``ModelBundle.write_files`` adds ``workbench.json``)."""
    folder = Path(folder)
    if not isinstance(bundle.model, OnnxModel):
        write_weights(bundle, folder)
    else:
        source = bundle.model.path.parent
        if source.resolve() != folder.resolve():
            for file in source.iterdir():
                if file.name.startswith("model.onnx"):
                    shutil.copy2(file, folder / file.name)
    bundle.model.config.save_pretrained(folder)
    bundle.tokenizer.save_pretrained(folder)


def load_compressed(
    folder: Path, kind: ModelKind, compression: dict[str, Any], common: dict[str, Any]
) -> tuple[PreTrainedModel | OnnxModel, PreTrainedTokenizerBase]:
    """Rebuild the model and tokenizer of a compressed bundle saved by ``write_compressed``.

    ``compression`` is what ``workbench.json`` says was done; ``common`` holds the loading
    options (``trust_remote_code``, ``attn_implementation``). Raises ``ModelLoadError`` when a
    file is missing or the weights do not fit the config.
    """
    import safetensors
    import transformers

    method = compression.get("method")
    config = transformers.AutoConfig.from_pretrained(folder, trust_remote_code=common["trust_remote_code"])
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=common["trust_remote_code"])
    if method == "onnx":
        if not (folder / "model.onnx").exists():
            raise ModelLoadError(f"{folder} is an ONNX export without its model.onnx; export it again.")
        return OnnxModel(folder / "model.onnx", config, kind), tokenizer
    if not (folder / WEIGHTS).exists():
        raise ModelLoadError(f"{folder} has no weights: {WEIGHTS} is missing.")
    auto = getattr(transformers, AUTO_CLASSES[kind])
    with quiet_transformers():
        model = auto.from_config(config, attn_implementation=common.get("attn_implementation"))
    model.eval()
    with safetensors.safe_open(str(folder / WEIGHTS), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118  (safe_open is not iterable)
        aliases = json.loads((f.metadata() or {}).get("aliases", "{}"))
    quantized: dict[str, tuple[torch.Tensor, float, int, torch.Tensor | None]] = {}
    if method == "int8":
        for layer in compression["layers"]:
            quantized[layer] = (
                tensors.pop(f"{layer}.weight.int8"),
                float(tensors.pop(f"{layer}.weight.scale")),
                int(tensors.pop(f"{layer}.weight.zero_point")),
                tensors.pop(f"{layer}.bias", None),
            )
    elif method == "prune":
        for layer in compression["layers"]:
            if f"{layer}.weight.shape" not in tensors:  # stored dense: hardly anything was pruned
                continue
            shape = tensors.pop(f"{layer}.weight.shape").tolist()
            bits = np.unpackbits(tensors.pop(f"{layer}.weight.mask").numpy())[: int(np.prod(shape))].astype(bool)
            flat = np.zeros(bits.shape, dtype=np.float32)
            flat[bits] = tensors.pop(f"{layer}.weight.values").numpy()
            tensors[f"{layer}.weight"] = torch.from_numpy(flat.reshape(shape))
    for alias, kept in aliases.items():
        tensors[alias] = tensors[kept]
    # The float model first; the int8 layers' weights are set once it is quantized.
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [m for m in missing if m.rsplit(".", 1)[0] not in quantized]
    if unexpected or missing:
        raise ModelLoadError(f"{folder} does not fit its config (missing {missing[:3]}, unexpected {unexpected[:3]}).")
    if quantized:
        with quiet_quantization():
            # quantize_dynamic returns the same class with int8 layers inside; torch leaves it unannotated.
            model = cast(
                "PreTrainedModel",
                torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8),
            )
            for layer, (values, scale, zero_point, bias) in quantized.items():
                weight = torch._make_per_tensor_quantized_tensor(values, scale, zero_point)
                cast("dynamic.Linear", model.get_submodule(layer)).set_weight_bias(weight, bias)
    return model, tokenizer
