"""How compressed bundles are saved and loaded: safetensors throughout, nothing pickled.

- int8: each quantized layer as its int8 weight, scale, zero point and float bias;
- pruned: each pruned weight as a bitmask of its non-zeros (one bit per weight) and the
  non-zero values, so the zeros cost one bit each on disk;
- ONNX: the ``model.onnx`` file (and its weights file) beside the tokenizer and config.

Everything else is stored as in any model folder. ``load_model(folder)`` reads
``workbench.json``, builds the model from its config and fills it in.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.errors import ModelLoadError

__all__ = ["load_compressed", "write_compressed", "write_weights"]

WEIGHTS = "model.safetensors"


def _tensors_once(state: dict) -> tuple[dict, dict]:
    """Tensors with shared storage kept once (tied embeddings); the other names point at the kept one."""
    kept: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
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


def write_weights(bundle: Any, folder: Path) -> None:
    """The weights file of a bundle, compressed or not (an ONNX export keeps its own files)."""
    import safetensors.torch

    from workbench.compress.operations import compression_of

    compression = compression_of(bundle)
    method = compression.get("method")
    model = bundle.model
    if method is None:
        from workbench.models import _quiet_transformers

        with _quiet_transformers():
            model.save_pretrained(folder, safe_serialization=True)
        for extra in Path(folder).glob("*.json"):  # config and generation config: not weights
            extra.unlink()
        return
    state = model.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    if method == "int8":
        for name in compression["layers"]:
            module = model.get_submodule(name)
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


def write_compressed(bundle: Any, folder: Path) -> None:
    """A compressed bundle's whole folder: weights, config, tokenizer and ``workbench.json``."""
    from workbench.compress.operations import compression_of

    folder = Path(folder)
    if compression_of(bundle).get("method") != "onnx":
        write_weights(bundle, folder)
    else:
        source = bundle.model.path.parent
        if source.resolve() != folder.resolve():
            for file in source.iterdir():
                if file.name.startswith("model.onnx"):
                    shutil.copy2(file, folder / file.name)
    bundle.model.config.save_pretrained(folder)
    bundle.tokenizer.save_pretrained(folder)


def load_compressed(folder: Path, meta: dict, common: dict) -> Any:
    """Rebuild a compressed bundle saved by ``write_compressed``."""
    import safetensors
    import transformers

    from workbench.compress.operations import OnnxModel
    from workbench.models import _AUTO_CLASSES, ModelBundle, _quiet_transformers

    compression = meta["extra"]["compression"]
    method, kind = compression.get("method"), meta["kind"]
    config = transformers.AutoConfig.from_pretrained(folder, trust_remote_code=common["trust_remote_code"])
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=common["trust_remote_code"])
    name, source, extra = meta.get("name", folder.name), meta.get("source", f"folder:{folder}"), meta["extra"]
    if method == "onnx":
        if not (folder / "model.onnx").exists():
            raise ModelLoadError(f"{folder} is an ONNX export without its model.onnx; export it again.")
        return ModelBundle(OnnxModel(folder / "model.onnx", config, kind), tokenizer, kind, name, source, extra=extra)
    if not (folder / WEIGHTS).exists():
        raise ModelLoadError(f"{folder} has no weights: {WEIGHTS} is missing.")
    auto = getattr(transformers, _AUTO_CLASSES[kind])
    with _quiet_transformers():
        model = auto.from_config(config, attn_implementation=common.get("attn_implementation"))
    model.eval()
    with safetensors.safe_open(str(folder / WEIGHTS), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        aliases = json.loads((f.metadata() or {}).get("aliases", "{}"))
    quantized: dict[str, tuple] = {}
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
        from workbench.compress.operations import quiet_quantization

        with quiet_quantization():
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            for layer, (values, scale, zero_point, bias) in quantized.items():
                weight = torch._make_per_tensor_quantized_tensor(values, scale, zero_point)
                model.get_submodule(layer).set_weight_bias(weight, bias)
    return ModelBundle(model, tokenizer, kind, name, source, extra=extra)
