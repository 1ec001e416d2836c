"""``OnnxModel``: an ONNX export run by ONNX Runtime, answering like the PyTorch model it came from."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import torch

from workbench.errors import CompressionError
from workbench.models.hf import ModelKind

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = ["OnnxModel", "need_onnx"]


def need_onnx() -> ModuleType:
    """The ``onnxruntime`` module, once onnx, onnxscript and onnxruntime are all importable.

    Raises ``CompressionError`` naming the missing package and the extra that installs it.
    """
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401  (torch.onnx's exporter builds the graph with it)
    except ImportError as e:
        raise CompressionError(
            f"ONNX export needs the onnx, onnxscript and onnxruntime packages ({e.name} is "
            "missing); install them with pip install 'workbench[onnx]'."
        ) from None
    return cast("ModuleType", onnxruntime)


class OnnxModel(torch.nn.Module):
    """An ONNX Runtime session that answers like the model it was exported from (``.logits``, ``.attentions``).

    Token ids in, no gradients: explanations that only run the model (occlusion, shap,
    attention) work on it; gradient methods need the PyTorch model.
    """

    def __init__(self, path: Path, config: PretrainedConfig, kind: ModelKind) -> None:
        super().__init__()
        ort = need_onnx()
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
        inputs_embeds: torch.Tensor | None = None,
        **unused: Any,
    ) -> SimpleNamespace:
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
        main = torch.from_numpy(outs[0])  # (batch, tokens, vocab) logits, or (batch, labels), or hidden states
        if self.kind in ("causal-lm", "masked-lm"):
            main = self.head(main)
        attentions = tuple(torch.from_numpy(a) for a in outs[1:]) if output_attentions else None
        return SimpleNamespace(logits=main, last_hidden_state=main, attentions=attentions)

    def get_output_embeddings(self) -> None:  # the unembedding lives inside the ONNX graph
        return None

    def get_input_embeddings(self) -> torch.nn.Module:
        raise CompressionError("An ONNX model has no embeddings to differentiate; use the PyTorch model.")

    def set_attn_implementation(self, attn_implementation: str) -> None:  # exported with eager attention
        pass
