"""quantize, prune and export_onnx: each returns a new bundle and leaves the original as it was."""

from __future__ import annotations

import contextlib
import copy
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from workbench.errors import CompressionError

__all__ = ["OnnxModel", "compression_of", "export_onnx", "prune", "quantize", "weights_bytes"]


def compression_of(bundle: Any) -> dict:
    """What was done to a bundle (``{}`` for an original): method and settings."""
    return dict((getattr(bundle, "extra", None) or {}).get("compression") or {})


def _check_bundle(bundle: Any, what: str) -> None:
    from workbench.models import ModelBundle

    if not isinstance(bundle, ModelBundle):
        raise CompressionError(f"{what} takes a ModelBundle (from load_model), got {type(bundle).__name__}.")


def _derived(bundle: Any, model: Any, compression: dict, suffix: str) -> Any:
    from workbench.models import ModelBundle

    extra = {**bundle.extra, "compression": {**compression, "of": bundle.name}}
    return ModelBundle(model, bundle.tokenizer, bundle.kind, f"{bundle.name} · {suffix}", bundle.source, extra=extra)


def _float_copy(bundle: Any) -> Any:
    """A CPU fp32 copy of the model in eval mode (tied weights stay tied)."""
    model = copy.deepcopy(bundle.model)
    return model.to(device="cpu", dtype=torch.float32).eval()


def _quantized_linears(model: Any) -> list[str]:
    from torch.ao.nn.quantized import dynamic

    return [name for name, m in model.named_modules() if isinstance(m, dynamic.Linear)]


def quantize(bundle: Any) -> Any:
    """Dynamic int8 quantization of every Linear layer (PyTorch's ``quantize_dynamic``), on CPU.

    Weights are stored in int8 with a scale per layer; activations are quantized on the fly.
    The copy runs on CPU (PyTorch's int8 kernels are CPU kernels). Quantizing twice, or
    quantizing an ONNX export, is refused with a sentence.
    """
    _check_bundle(bundle, "quantize")
    done = compression_of(bundle).get("method")
    if done == "int8" or _quantized_linears(bundle.model):
        raise CompressionError(f"{bundle.name} is already quantized to int8; quantize the original model, once.")
    if done == "onnx":
        raise CompressionError("An ONNX export cannot be quantized here; quantize the PyTorch model instead.")
    with quiet_quantization():
        model = torch.ao.quantization.quantize_dynamic(_float_copy(bundle), {torch.nn.Linear}, dtype=torch.qint8)
    layers = _quantized_linears(model)
    return _derived(bundle, model, {"method": "int8", "layers": layers}, "int8")


@contextlib.contextmanager
def quiet_quantization() -> Iterator[None]:
    """PyTorch warns on every quantized tensor it makes that its int8 dtypes will move to torchao; once is news."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        yield


def _prunable(model: Any) -> list[tuple[str, Any]]:
    """Every Linear layer except an output head that shares its weight with the input embeddings."""
    out_head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    shared = out_head is not None and emb is not None and out_head.weight is emb.weight
    return [
        (name, m) for name, m in model.named_modules() if type(m) is torch.nn.Linear and not (shared and m is out_head)
    ]


def prune(bundle: Any, amount: float, structured: bool = False) -> Any:
    """Magnitude pruning of every Linear layer through ``torch.nn.utils.prune``, made permanent.

    ``amount`` is the fraction of each layer's weights set to zero, in [0, 1): the smallest in
    magnitude (L1), or with ``structured=True`` whole output rows with the smallest L2 norm. An
    output head tied to the embeddings is left whole (pruning it would prune the embeddings).
    Saved, the zeros cost one bit each.
    """
    from torch.nn.utils import prune as torch_prune

    _check_bundle(bundle, "prune")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount < 1:
        raise CompressionError(
            f"amount must be a fraction in [0, 1), got {amount!r}; 0.5 prunes half of each "
            "layer's weights (1 would prune them all)."
        )
    method = compression_of(bundle).get("method")
    if method in ("int8", "onnx") or _quantized_linears(bundle.model):
        raise CompressionError(
            f"{bundle.name} is {'an ONNX export' if method == 'onnx' else 'quantized to int8'}; "
            "prune the original model first, then quantize or export the pruned one."
        )
    model = _float_copy(bundle)
    layers = _prunable(model)
    total = zeros = 0
    for _, module in layers:
        if structured:
            torch_prune.ln_structured(module, "weight", amount=float(amount), n=2, dim=0)
        else:
            torch_prune.l1_unstructured(module, "weight", amount=float(amount))
        torch_prune.remove(module, "weight")  # permanent: the zeros are in the weight itself
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
    return _derived(bundle, model, compression, f"{kind} {amount:.0%}")


# ---------------------------------------------------------------------------------------------- ONNX


def _need_onnx() -> Any:
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401  (torch.onnx's exporter builds the graph with it)
    except ImportError as e:
        raise CompressionError(
            f"ONNX export needs the onnx, onnxscript and onnxruntime packages ({e.name} is "
            "missing); install them with pip install 'workbench[onnx]'."
        ) from None
    return onnxruntime


class _ExportWrapper(torch.nn.Module):
    """The model as ONNX sees it: token ids and mask in; logits (or hidden states) and every layer's attention out."""

    def __init__(self, model: Any, kind: str):
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
        main = out.last_hidden_state if self.kind == "encoder" else out.logits
        return (main, *out.attentions)


class OnnxModel(torch.nn.Module):
    """An ONNX Runtime session that answers like the model it was exported from (``.logits``, ``.attentions``).

    Token ids in, no gradients: explanations that only run the model (occlusion, shap,
    attention) work on it; gradient methods need the PyTorch model.
    """

    def __init__(self, path: Path, config: Any, kind: str):
        super().__init__()
        ort = _need_onnx()
        self.path, self.config, self.kind = Path(path), config, kind
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self._anchor = torch.nn.Parameter(torch.zeros(0), requires_grad=False)  # says: CPU, float32
        # A language model's logits pass through this no-op "head", so that probes and attributions that
        # read only some positions (a forward pre-hook on the head) pick them out here.
        self.head = torch.nn.Identity()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        inputs_embeds: Any = None,
        **unused: Any,
    ) -> Any:
        if inputs_embeds is not None or input_ids is None:
            raise CompressionError(
                "An ONNX model takes token ids only; gradient methods (integrated gradients, "
                "gradient x input) need the PyTorch model."
            )
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        outs = self.session.run(
            None,
            {
                "input_ids": input_ids.cpu().numpy().astype("int64"),
                "attention_mask": attention_mask.cpu().numpy().astype("int64"),
            },
        )
        main = torch.from_numpy(outs[0])
        if self.kind in ("causal-lm", "masked-lm"):
            main = self.head(main)
        attentions = tuple(torch.from_numpy(a) for a in outs[1:]) if output_attentions else None
        return SimpleNamespace(logits=main, last_hidden_state=main, attentions=attentions)

    def get_output_embeddings(self) -> None:  # the unembedding lives inside the ONNX graph
        return None

    def get_input_embeddings(self) -> Any:
        raise CompressionError("An ONNX model has no embeddings to differentiate; use the PyTorch model.")

    def set_attn_implementation(self, name: str) -> None:  # exported with eager attention: weights come out
        pass


def export_onnx(bundle: Any, path: str | Path, *, atol: float = 1e-4) -> Any:
    """Export to ONNX (``torch.onnx``'s exporter) into the folder ``path``; check it; return a bundle that runs it.

    The folder gets ``model.onnx`` (with its weights beside it), the tokenizer and config, so
    ``load_model(path)`` loads it again. Inputs are token ids and the attention mask, of any
    batch and length; outputs are the logits and every layer's attention. ONNX Runtime's
    outputs are checked against PyTorch's on padded inputs of two lengths: a difference above
    ``atol`` is refused with a sentence, as is a model with operators ONNX lacks.
    """
    from workbench.models import eager_attention

    _check_bundle(bundle, "export_onnx")
    _need_onnx()
    method = compression_of(bundle).get("method")
    if method == "onnx":
        raise CompressionError(f"{bundle.name} is already an ONNX export; export the PyTorch model it came from.")
    if method == "int8" or _quantized_linears(bundle.model):
        raise CompressionError(
            f"ONNX has no operator for PyTorch's dynamic int8 layers (quantized::linear_dynamic), so {bundle.name} "
            "cannot be exported; export the float model, then quantize the ONNX file with onnxruntime.quantization."
        )
    folder = Path(path).expanduser().resolve()
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not _is_export(folder))):
        raise CompressionError(
            f"{folder} already holds other files; export into a new or empty folder "
            "(an earlier export there is replaced)."
        )
    model = _float_copy(bundle)
    sample = bundle.tokenizer(
        ["An example input for the export.", "A second, longer example input, padded."],
        return_tensors="pt",
        padding=True,
    )
    args = (sample["input_ids"], sample["attention_mask"])
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence", max=bundle.max_positions)}
    tmp = Path(tempfile.mkdtemp(prefix=".onnx-export-"))
    try:
        with eager_attention(model), _quiet_export():
            try:
                program = torch.onnx.export(
                    _ExportWrapper(model, bundle.kind).eval(),
                    args,
                    dynamo=True,
                    input_names=["input_ids", "attention_mask"],
                    dynamic_shapes={"input_ids": dims, "attention_mask": dims},
                    external_data=True,
                    verbose=False,
                )
                program.save(str(tmp / "model.onnx"), external_data=True)
            except Exception as error:
                raise CompressionError(
                    f"ONNX cannot express {bundle.name}: {_export_failure(error)}; export a model "
                    "built from standard layers, or keep it in PyTorch."
                ) from None
        folder.mkdir(parents=True, exist_ok=True)
        for file in tmp.iterdir():
            shutil.move(str(file), folder / file.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    onnx_model = OnnxModel(folder / "model.onnx", model.config, bundle.kind)
    diff = _max_difference(model, onnx_model, bundle)
    if not diff <= atol:
        raise CompressionError(
            f"ONNX Runtime's outputs differ from PyTorch's by up to {diff:.2e}, more than "
            f"atol={atol:g}; the export in {folder} is not faithful."
        )
    exported = _derived(bundle, onnx_model, {"method": "onnx", "max_abs_diff": diff}, "onnx")
    exported.write_files(folder)
    return exported


def _is_export(folder: Path) -> bool:
    import json

    try:
        meta = json.loads((folder / "workbench.json").read_text())
    except (OSError, ValueError):
        return False
    return ((meta.get("extra") or {}).get("compression") or {}).get("method") == "onnx"


def _max_difference(model: Any, onnx_model: OnnxModel, bundle: Any) -> float:
    """The largest gap between PyTorch and ONNX Runtime on padded inputs of two lengths other than the export's."""
    texts = ["Short.", "A longer input of several words, to check the dynamic length and the padding mask."]
    enc = bundle.tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        ours = onnx_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        theirs = out.last_hidden_state if bundle.kind == "encoder" else out.logits
    real = enc["attention_mask"].bool()
    return float((ours - theirs).abs()[real].max()) if ours.dim() == 3 else float((ours - theirs).abs().max())


def _export_failure(error: BaseException) -> str:
    text = " ".join(str(error).split())
    for marker in ("Unsupported", "unsupported", "not supported", "No decomposition", "no symbolic"):
        at = text.find(marker)
        if at >= 0:
            return text[max(0, at - 80) : at + 160]
    return text[:240] or type(error).__name__


class _quiet_export:
    """torch.onnx prints its progress and warns about training mode and axis names; a notebook needs none of it."""

    def __enter__(self) -> None:
        import contextlib
        import io
        import warnings

        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        catcher = self._stack.enter_context(warnings.catch_warnings())
        del catcher
        warnings.simplefilter("ignore")

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()


def weights_bytes(bundle: Any) -> int:
    """Bytes of the weight files when the bundle is saved (the tokenizer and config left out)."""
    with tempfile.TemporaryDirectory() as tmp:
        method = compression_of(bundle).get("method")
        if method == "onnx":
            model = bundle.model
            return sum(p.stat().st_size for p in model.path.parent.iterdir() if p.name.startswith("model.onnx"))
        from workbench.compress.formats import write_weights

        write_weights(bundle, Path(tmp))
        return sum(p.stat().st_size for p in Path(tmp).iterdir() if p.name.endswith(".safetensors"))
