"""The logit lens: what the model would predict if it stopped after each layer.

Each layer's hidden state goes through the model's own final norm and output head (BERT's MLM
head, ModernBERT's head and decoder, a Llama or GPT unembedding), giving a distribution over the
vocabulary at every layer and position (nostalgebraist 2020). The last row is the model's own
output.

Example::

    lens = logit_lens(load_model("smollm2-135m"), "The capital of France is")
    lens.target_name, lens.target_probs[:, -1]   # p(' Paris') after each layer, at the last position
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from workbench.errors import ProbeError
from workbench.explain.inputs import (
    MASK_PLACEHOLDER,
    check_text,
    check_top_k,
    display_token,
    encode,
    inference,
    token_id,
    with_model_mask,
)
from workbench.explain.onednn import PackedLinear
from workbench.explain.onednn import available as onednn_available
from workbench.explain.tokens import TokenInfo, token_info

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["LogitLensResult", "logit_lens"]

CHUNK = 128  # positions (over all layers) sent through the output head at once


@dataclass
class LogitLensResult:
    """Top tokens and the probability of one target token at every layer and position.

    Arrays are ``(layers + 1, positions, ...)``: row 0 is the embeddings, row ``i`` the output of
    layer ``i``; the last row equals the model's own output distribution.
    """

    model: str
    text: str
    tokens: TokenInfo
    layer_names: list[str]
    top_ids: np.ndarray  # (rows, positions, k)
    top_tokens: list[list[list[str]]]  # (rows, positions, k)
    top_probs: np.ndarray  # (rows, positions, k)
    target: int
    target_name: str
    target_probs: np.ndarray  # (rows, positions)
    target_ranks: np.ndarray  # (rows, positions), 0 is the top token
    read_position: int  # where the target is predicted: the mask, or the last position

    @property
    def num_rows(self) -> int:
        return int(self.top_probs.shape[0])

    def first_layer_where_top(self, position: int | None = None) -> int | None:
        """The first row at which the target is the top token at ``position`` (default: where it is read)."""
        pos = self.read_position if position is None else position
        hits = np.flatnonzero(self.target_ranks[:, pos] == 0)
        return int(hits[0]) if len(hits) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "text": self.text,
            "tokens": self.tokens.to_dict(),
            "layer_names": self.layer_names,
            "top_tokens": self.top_tokens,
            "top_probs": np.round(self.top_probs, 6).tolist(),
            "target": self.target,
            "target_name": self.target_name,
            "target_probs": np.round(self.target_probs, 6).tolist(),
            "target_ranks": self.target_ranks.tolist(),
            "read_position": self.read_position,
        }

    def __repr__(self) -> str:
        first = self.first_layer_where_top()
        where = f"top from row {first} ({self.layer_names[first]})" if first is not None else "never top"
        return (
            f"LogitLensResult({self.model}, {len(self.tokens.text)} tokens x {self.num_rows} rows; "
            f"target {self.target_name!r} {where})"
        )


def _lens_head(model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's own way from a hidden state to logits: its final norm (where it has one) and output head."""
    children = dict(model.named_children())
    if "cls" in children:  # BERT: every layer ends in a LayerNorm; the MLM head does the rest
        cls: Callable[[torch.Tensor], torch.Tensor] = model.cls
        return cls
    if "head" in children and "decoder" in children:  # ModernBERT
        norm = getattr(model.model, "final_norm", torch.nn.Identity())
        return lambda h: model.decoder(model.head(norm(h)))
    base = getattr(model, "model", None) or getattr(model, "transformer", None)
    norm = getattr(base, "norm", None) or getattr(base, "ln_f", None)
    head = model.get_output_embeddings()
    if norm is None or head is None:
        raise ProbeError(
            f"The logit lens does not know where {type(model).__name__} keeps its final norm and "
            "output head; it supports BERT, ModernBERT, Llama-style and GPT-2-style language models."
        )
    packed = _packed_unembedding(head)
    return lambda h: packed(norm(h).float()) if packed is not None else head(norm(h))


_PACKED: weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple[Any, ...], PackedLinear]] = (
    weakref.WeakKeyDictionary()
)  # head module -> (weights key, PackedLinear)


def _packed_unembedding(head: Any) -> PackedLinear | None:
    """The vocabulary projection packed for oneDNN, kept while the weights stay the same (and the model lives).

    It is the lens's costliest step (every layer and position times the whole vocabulary): 177 ms
    packed against 221 ms for SmolLM2 at 18 tokens; packing takes 44 ms, so it is done once.
    """
    w = getattr(head, "weight", None)
    if not isinstance(w, torch.Tensor):  # a quantized head (int8) keeps its weight packed its own way
        return None
    if w.device.type != "cpu" or w.dtype != torch.float32 or not onednn_available():
        return None
    key = (w.data_ptr(), w._version, tuple(w.shape), None if head.bias is None else head.bias._version)
    hit = _PACKED.get(head)
    if hit is not None and hit[0] == key:
        return hit[1]
    packed = PackedLinear.of([w], [head.bias] if head.bias is not None else [], True)
    _PACKED[head] = (key, packed)
    return packed


def logit_lens(bundle: ModelBundle, text: str, target: int | str | None = None, *, top_k: int = 5) -> LogitLensResult:
    """Top-k tokens at every layer and position, and the probability and rank of ``target`` there.

    ``target`` is a token string or id; by default the model's own top prediction where it is
    read (the first mask of a masked LM, the last position of a causal LM). Raises ``ProbeError``
    for empty text, a model without a language-model head, or a masked LM's text with no mask.
    """
    text, top_k = check_text(text), check_top_k(top_k)
    if bundle.kind not in ("masked-lm", "causal-lm"):
        raise ProbeError(f"The logit lens needs a language model; {bundle.name} is a {bundle.kind} model.")
    tok = bundle.tokenizer
    model_text = with_model_mask(tok, text) if bundle.kind == "masked-lm" else text
    enc = encode(bundle, model_text)
    ids = enc["input_ids"][0].tolist()
    if bundle.kind == "masked-lm":
        if tok.mask_token_id not in ids:
            raise ProbeError(f"The text has no mask; put {MASK_PLACEHOLDER} where the model should guess a word.")
        read = ids.index(tok.mask_token_id)
    else:
        read = len(ids) - 1
    head = _lens_head(bundle.model)
    with inference(bundle.model):
        out = bundle.model(**enc, output_hidden_states=True)
        hidden = out.hidden_states  # (layers + 1) x (1, n, hidden)
        inner = torch.stack(hidden[:-1])[:, 0]  # (layers, n, hidden): before the final norm
        rows, n, width = inner.shape
        own = torch.log_softmax(out.logits[0].float(), dim=-1)  # (n, vocab): the model's own output
        k = min(top_k, own.shape[-1])
        default = int(own[read].argmax())
        target_id = default if target is None else token_id(tok, target, own.shape[-1])
        # Every layer and position through the head, CHUNK positions at a time: one multiply per
        # chunk keeps the CPU busy, and each chunk's logits are still in cache while they are
        # normalised, ranked and searched (208 ms against 288 ms in one piece, SmolLM2 at 19 tokens).
        flat = inner.reshape(rows * n, width)
        blocks = [range(start, min(start + CHUNK, rows * n)) for start in range(0, rows * n, CHUNK)] + [None]
        tops, targets, ranks = [], [], []
        for block in blocks:
            # (chunk, vocab) for a block of layers and positions; the model's own output comes last
            log_probs = (
                own if block is None else torch.log_softmax(head(flat[block.start : block.stop]).float(), dim=-1)
            )
            chosen = log_probs[:, target_id]
            tops.append(log_probs.topk(k, dim=-1))
            targets.append(chosen)
            ranks.append((log_probs > chosen[:, None]).sum(-1, dtype=torch.int32))  # int64 sums are slower
        top_probs = torch.cat([t.values for t in tops]).exp().view(rows + 1, n, k)
        top_ids = torch.cat([t.indices for t in tops]).view(rows + 1, n, k)
        target_probs = torch.cat(targets).exp().view(rows + 1, n)
        target_ranks = torch.cat(ranks).view(rows + 1, n)
    enc_full = tok(model_text, return_offsets_mapping=True, return_special_tokens_mask=True, verbose=False)
    info = token_info(tok, enc_full, model_text)
    id_array = top_ids.cpu().numpy()
    names = {int(i): display_token(tok, int(i)) for i in np.unique(id_array)}
    top_tokens = [[[names[int(i)] for i in cell] for cell in row] for row in id_array]
    layers = len(hidden) - 1
    return LogitLensResult(
        model=bundle.name,
        text=text,
        tokens=info,
        layer_names=["embeddings"] + [f"layer {i}" for i in range(1, layers + 1)],
        top_ids=id_array,
        top_tokens=top_tokens,
        top_probs=top_probs.cpu().numpy(),
        target=target_id,
        target_name=display_token(tok, target_id),
        target_probs=target_probs.cpu().numpy(),
        target_ranks=target_ranks.cpu().numpy(),
        read_position=read,
    )
