"""quantize and prune: each returns a new bundle and leaves the original as it was.

Also the steps every compression shares (``onnx_export`` uses them too): checking that it was
given a bundle, the float copy it starts from, and the derived bundle it returns.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from workbench.errors import CompressionError
from workbench.models import ModelBundle
from workbench.models.compressed import quiet_quantization, write_weights
from workbench.models.onnx import OnnxModel

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = ["check_bundle", "derived_bundle", "float_copy", "prune", "quantize", "quantized_linears", "weights_bytes"]


def check_bundle(bundle: object, what: str) -> None:
    """Raise ``CompressionError`` unless ``bundle`` is a ``ModelBundle``; ``what`` names the call."""
    if not isinstance(bundle, ModelBundle):
        raise CompressionError(f"{what} takes a ModelBundle (from load_model), got {type(bundle).__name__}.")


def derived_bundle(
    bundle: ModelBundle, model: PreTrainedModel | OnnxModel, compression: dict[str, Any], suffix: str
) -> ModelBundle:
    """A new bundle around ``model`` that records ``compression`` (and the bundle it came ``of``)."""
    extra = {**bundle.extra, "compression": {**compression, "of": bundle.name}}
    return ModelBundle(model, bundle.tokenizer, bundle.kind, f"{bundle.name} · {suffix}", bundle.source, extra=extra)


def float_copy(bundle: ModelBundle) -> PreTrainedModel:
    """A CPU fp32 copy of the model in eval mode (tied weights stay tied).

    Raises ``CompressionError`` for an ONNX export, which has no PyTorch weights to copy.
    """
    if isinstance(bundle.model, OnnxModel):
        raise CompressionError(f"{bundle.name} is an ONNX export; compress the PyTorch model it came from.")
    model = copy.deepcopy(bundle.model)
    model.to(device="cpu", dtype=torch.float32)  # type: ignore[call-arg]  # transformers types its wrapped .to() as unbound
    model.eval()
    return model


def quantized_linears(model: torch.nn.Module) -> list[str]:
    """Names of the layers that PyTorch's dynamic quantization turned into int8 Linear layers."""
    from torch.ao.nn.quantized import dynamic

    return [name for name, m in model.named_modules() if isinstance(m, dynamic.Linear)]


def quantize(bundle: ModelBundle) -> ModelBundle:
    """Dynamic int8 quantization of every Linear layer (PyTorch's ``quantize_dynamic``), on CPU.

    Weights are stored in int8 with a scale per layer; activations are quantized on the fly.
    The copy runs on CPU (PyTorch's int8 kernels are CPU kernels). Quantizing twice, or
    quantizing an ONNX export, is refused with a sentence.
    """
    check_bundle(bundle, "quantize")
    done = bundle.compression.get("method")
    if done == "int8" or quantized_linears(bundle.model):
        raise CompressionError(f"{bundle.name} is already quantized to int8; quantize the original model, once.")
    if done == "onnx":
        raise CompressionError("An ONNX export cannot be quantized here; quantize the PyTorch model instead.")
    with quiet_quantization():
        # quantize_dynamic returns the same class with int8 layers inside; torch leaves it unannotated.
        model = cast(
            "PreTrainedModel",
            torch.ao.quantization.quantize_dynamic(float_copy(bundle), {torch.nn.Linear}, dtype=torch.qint8),
        )
    layers = quantized_linears(model)
    return derived_bundle(bundle, model, {"method": "int8", "layers": layers}, "int8")


def _prunable(model: PreTrainedModel) -> list[tuple[str, torch.nn.Linear]]:
    """Every Linear layer except an output head that shares its weight with the input embeddings."""
    out_head = model.get_output_embeddings()
    emb = model.get_input_embeddings()
    shared = out_head is not None and out_head.weight is emb.weight
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and type(m) is torch.nn.Linear and not (shared and m is out_head)
    ]


def prune(bundle: ModelBundle, amount: float, structured: bool = False) -> ModelBundle:
    """Magnitude pruning of every Linear layer through ``torch.nn.utils.prune``, made permanent.

    ``amount`` is the fraction of each layer's weights set to zero, in [0, 1): the smallest in
    magnitude (L1), or with ``structured=True`` whole output rows with the smallest L2 norm. An
    output head tied to the embeddings is left whole (pruning it would prune the embeddings).
    Saved, the zeros cost one bit each.
    """
    from torch.nn.utils import prune as torch_prune

    check_bundle(bundle, "prune")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount < 1:
        raise CompressionError(
            f"amount must be a fraction in [0, 1), got {amount!r}; 0.5 prunes half of each "
            "layer's weights (1 would prune them all)."
        )
    method = bundle.compression.get("method")
    if method in ("int8", "onnx") or quantized_linears(bundle.model):
        raise CompressionError(
            f"{bundle.name} is {'an ONNX export' if method == 'onnx' else 'quantized to int8'}; "
            "prune the original model first, then quantize or export the pruned one."
        )
    model = float_copy(bundle)
    layers = _prunable(model)
    total = zeros = 0
    for _, module in layers:
        # torch.nn.utils.prune leaves its functions unannotated.
        if structured:
            torch_prune.ln_structured(module, "weight", amount=float(amount), n=2, dim=0)
        else:
            torch_prune.l1_unstructured(module, "weight", amount=float(amount))
        torch_prune.remove(module, "weight")  # permanent: the zeros stay in the weight
        total += module.weight.numel()
        zeros += int((module.weight == 0).sum())
    compression = {
        "method": "prune",
        "amount": float(amount),
        "structured": bool(structured),
        "layers": [name for name, _ in layers],
        "sparsity": zeros / max(total, 1),
    }
    kind = "structured" if structured else "pruned"
    return derived_bundle(bundle, model, compression, f"{kind} {amount:.0%}")


def weights_bytes(bundle: ModelBundle) -> int:
    """Bytes of the weight files when the bundle is saved (the tokenizer and config left out)."""
    if isinstance(bundle.model, OnnxModel):
        folder = bundle.model.path.parent
        return sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith("model.onnx"))
    with tempfile.TemporaryDirectory() as tmp:
        write_weights(bundle, Path(tmp))
        return sum(p.stat().st_size for p in Path(tmp).iterdir() if p.name.endswith(".safetensors"))
