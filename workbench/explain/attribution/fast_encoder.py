"""An inference-only forward pass of a BERT-family sequence classifier, for the many evaluations of SHAP.

SHAP evaluates one classifier hundreds of times per text. Three things make each evaluation
cheaper without changing its value (checked against the model's own forward in the tests):

- the matrix multiplies go through oneDNN with weights packed once (PyTorch's default fp32
  path reaches only about 165 GFLOP/s on the 2-core CPU this was measured on; packed oneDNN
  about 210), with the bias and GELU fused in;
- the query, key and value projections are one multiply;
- the last layer is computed only at the position the classifier reads (the first token):
  its keys and values still come from every position, but its query, attention output and
  feed-forward run on one row instead of n.

Only ``BertForSequenceClassification``-shaped models (MiniLM and other BERT checkpoints) take
this route; ``FastEncoder.supports`` says whether a model does. Everything else runs the
model's own forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from workbench.explain.onednn import PackedLinear
from workbench.explain.onednn import available as onednn_available

__all__ = ["FastEncoder"]


@dataclass
class _ReadAttention:
    """The last layer's projections: only the first position feeds the classifier."""

    q: PackedLinear  # queries at the read position only
    kv: PackedLinear  # keys and values of every position


@dataclass
class _Layer:
    # layers before the last: queries, keys and values of every position in one multiply; the last: _ReadAttention
    projections: PackedLinear | _ReadAttention
    out: PackedLinear
    norm1: torch.nn.LayerNorm
    up: PackedLinear
    down: PackedLinear
    norm2: torch.nn.LayerNorm


class FastEncoder:
    """Class probabilities of a BERT sequence classifier for a batch of token ids, computed cheaply.

    ``FastEncoder(model)(input_ids, attention_mask)`` returns ``(batch, labels)`` softmax
    probabilities equal to the model's own (within float rounding). ``route`` names how it ran.
    """

    def __init__(self, model: Any):
        if not self.supports(model):
            raise TypeError(f"{type(model).__name__} is not a BERT sequence classifier.")
        self.onednn = onednn_available() and next(model.parameters()).device.type == "cpu"
        self.route = "fast BERT encoder, fp32 " + ("through oneDNN" if self.onednn else "(PyTorch default)")
        bert = model.bert
        cfg = model.config
        self.heads = cfg.num_attention_heads
        self.embeddings = bert.embeddings
        self.layers = []
        last = len(bert.encoder.layer) - 1
        for i, layer in enumerate(bert.encoder.layer):
            s, o = layer.attention.self, layer.attention.output
            packed = self.onednn
            self.layers.append(
                _Layer(
                    projections=PackedLinear.of(
                        [s.query.weight, s.key.weight, s.value.weight], [s.query.bias, s.key.bias, s.value.bias], packed
                    )
                    if i < last
                    else _ReadAttention(
                        q=PackedLinear.of([s.query.weight], [s.query.bias], packed),
                        kv=PackedLinear.of([s.key.weight, s.value.weight], [s.key.bias, s.value.bias], packed),
                    ),
                    out=PackedLinear.of([o.dense.weight], [o.dense.bias], packed),
                    norm1=o.LayerNorm,
                    up=PackedLinear.of(
                        [layer.intermediate.dense.weight], [layer.intermediate.dense.bias], packed, "gelu"
                    ),
                    down=PackedLinear.of([layer.output.dense.weight], [layer.output.dense.bias], packed),
                    norm2=layer.output.LayerNorm,
                )
            )
        pooler = bert.pooler
        self.pooler = PackedLinear.of([pooler.dense.weight], [pooler.dense.bias], False) if pooler else None
        self.classifier = PackedLinear.of([model.classifier.weight], [model.classifier.bias], False)

    @staticmethod
    def supports(model: Any) -> bool:
        """True for a BERT sequence classifier in fp32 with exact GELU, absolute positions and softmax labels."""
        cfg = getattr(model, "config", None)
        return (
            type(model).__name__ == "BertForSequenceClassification"
            and getattr(cfg, "hidden_act", None) == "gelu"
            and getattr(cfg, "position_embedding_type", "absolute") == "absolute"
            and getattr(cfg, "problem_type", None) in (None, "single_label_classification")
            and getattr(cfg, "num_labels", 0) > 1
            and next(model.parameters()).dtype == torch.float32
            # plain Linear layers only: a quantized (int8) model keeps its weights where this cannot read them
            and all(type(m) is torch.nn.Linear for m in model.modules() if "Linear" in type(m).__name__)
        )

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, nq, _ = q.shape
        n = k.shape[1]
        h = self.heads
        q = q.view(b, nq, h, -1).transpose(1, 2)  # (batch, heads, nq, head_dim)
        k = k.view(b, n, h, -1).transpose(1, 2)  # (batch, heads, n, head_dim)
        v = v.view(b, n, h, -1).transpose(1, 2)
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (batch, heads, nq, head_dim)
        return ctx.transpose(1, 2).reshape(b, nq, -1)

    @torch.inference_mode()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mask = attention_mask.bool()[:, None, None, :]  # (batch, 1, 1, key)
        x = self.embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids))  # (batch, n, hidden)
        d = x.shape[-1]
        for layer in self.layers:
            projections = layer.projections
            if isinstance(projections, PackedLinear):
                q, k, v = projections(x.reshape(b * n, d)).view(b, n, 3 * d).chunk(3, dim=-1)
                residual = x
            else:  # the last layer: only the first position feeds the classifier
                k, v = projections.kv(x.reshape(b * n, d)).view(b, n, 2 * d).chunk(2, dim=-1)
                residual = x[:, :1]
                q = projections.q(residual.reshape(b, d)).view(b, 1, d)
            rows = residual.shape[1]
            ctx = self._attend(q, k, v, mask)  # (batch, rows, hidden)
            h = layer.norm1(layer.out(ctx.reshape(b * rows, d)) + residual.reshape(b * rows, d))
            x = layer.norm2(layer.down(layer.up(h)) + h).view(b, rows, d)
        cls = x[:, 0]  # (batch, hidden)
        pooled = torch.tanh(self.pooler(cls)) if self.pooler is not None else cls
        return self.classifier(pooled).softmax(-1)  # (batch, labels)
