"""export_onnx: a bundle exported to ONNX, checked against PyTorch by ONNX Runtime, as a new bundle."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from workbench.compress.operations import check_bundle, derived_bundle, float_copy, quantized_linears
from workbench.errors import CompressionError
from workbench.models import ModelBundle, ModelKind, eager_attention
from workbench.models.bundle import BUNDLE_FILE
from workbench.models.onnx import OnnxModel, need_onnx

__all__ = ["export_onnx"]


class _ExportWrapper(torch.nn.Module):
    """The model as ONNX sees it: token ids and mask in; logits (or hidden states) and every layer's attention out."""

    def __init__(self, model: torch.nn.Module, kind: ModelKind) -> None:
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
        main = out.last_hidden_state if self.kind == "encoder" else out.logits
        return (main, *out.attentions)


def export_onnx(bundle: ModelBundle, path: str | os.PathLike[str], *, atol: float = 1e-4) -> ModelBundle:
    """Export to ONNX (``torch.onnx``'s exporter) into the folder ``path``; check it; return a bundle that runs it.

    The folder gets ``model.onnx`` (with its weights beside it), the tokenizer and config, so
    ``load_model(path)`` loads it again. Inputs are token ids and the attention mask, of any
    batch and length; outputs are the logits and every layer's attention. ONNX Runtime's
    outputs are checked against PyTorch's on padded inputs of two lengths: a difference above
    ``atol`` is refused with a sentence, as is a model with operators ONNX lacks.
    """
    check_bundle(bundle, "export_onnx")
    need_onnx()
    method = bundle.compression.get("method")
    if method == "onnx":
        raise CompressionError(f"{bundle.name} is already an ONNX export; export the PyTorch model it came from.")
    if method == "int8" or quantized_linears(bundle.model):
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
    model = float_copy(bundle)
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
                if program is None:  # only the legacy exporter (dynamo=False) returns nothing
                    raise RuntimeError("torch.onnx.export returned no program")
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
    exported = derived_bundle(bundle, onnx_model, {"method": "onnx", "max_abs_diff": diff}, "onnx")
    exported.write_files(folder)
    return exported


def _is_export(folder: Path) -> bool:
    try:
        meta = json.loads((folder / BUNDLE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return ((meta.get("extra") or {}).get("compression") or {}).get("method") == "onnx"


def _max_difference(model: torch.nn.Module, onnx_model: OnnxModel, bundle: ModelBundle) -> float:
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


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """torch.onnx prints its progress and warns about training mode and axis names; a notebook needs none of it."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
