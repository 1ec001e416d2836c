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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from workbench.errors import ProbeError
from workbench.explain.budget import require
from workbench.explain.footprint import ModelShape
from workbench.explain.inputs import (
    MASK_PLACEHOLDER,
    accepts_argument,
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
from workbench.explain.output_head import output_vocabulary
from workbench.explain.tokens import TokenInfo, token_info
from workbench.models.heads import final_norm_and_head
from workbench.models.heads import own_head as model_own_head
from workbench.training.tuned_lens import TunedLens

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["LogitLensResult", "lens_head", "logit_lens"]

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
    positions: list[int] = field(default_factory=list)  # the token position of each column; all by default
    lens: str = "logit lens"  # which lens read the layers: "logit lens", or a tuned lens's label

    @property
    def num_rows(self) -> int:
        return int(self.top_probs.shape[0])

    def __post_init__(self) -> None:
        if not self.positions:
            self.positions = list(range(self.top_probs.shape[1]))

    def column(self, position: int | None = None) -> int:
        """The column of the arrays that holds token ``position`` (default: where the target is read)."""
        pos = self.read_position if position is None else position
        if pos not in self.positions:
            raise ProbeError(
                f"Position {pos} was not read: this lens holds positions {self.positions[0]}..{self.positions[-1]}"
                f" ({len(self.positions)} of them); run logit_lens with positions=[..., {pos}]."
            )
        return self.positions.index(pos)

    def first_layer_where_top(self, position: int | None = None) -> int | None:
        """The first row at which the target is the top token at ``position`` (default: where it is read)."""
        hits = np.flatnonzero(self.target_ranks[:, self.column(position)] == 0)
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
            "positions": self.positions,
            "lens": self.lens,
        }

    def __repr__(self) -> str:
        first = self.first_layer_where_top()
        where = f"top from row {first} ({self.layer_names[first]})" if first is not None else "never top"
        return (
            f"LogitLensResult({self.model}, {self.lens}, {len(self.tokens.text)} tokens x {self.num_rows} rows; "
            f"target {self.target_name!r} {where})"
        )


def lens_head(model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's own way from a hidden state to logits: its final norm (where it has one) and output head,
    with a float32 unembedding packed for oneDNN."""
    norm, head = final_norm_and_head(model)
    if norm is None:
        return head
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


def logit_lens(
    bundle: ModelBundle,
    text: str,
    target: int | str | None = None,
    *,
    top_k: int = 5,
    positions: Sequence[int] | None = None,
    lens: TunedLens | None = None,
    memory_mb: int | None = None,
) -> LogitLensResult:
    """Top-k tokens at every layer and position, and the probability and rank of ``target`` there.

    ``target`` is a token string or id; by default the model's own top prediction where it is
    read (the first mask of a masked LM, the last position of a causal LM). ``positions`` reads
    only those positions through the head (the forward still sees the whole text); by default all.
    The vocabulary is never held for all positions at once: ``CHUNK`` cells at a time, top-k kept.
    Raises ``ProbeError`` for empty text, a model without a language-model head, a masked LM's text
    with no mask or a position out of range, and ``MemoryBudgetError`` (before the forward) when
    the call cannot fit ``memory_mb`` (default: the kernel's budget).
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
    n = len(ids)
    columns = _check_positions(positions, n)
    if lens is not None:
        lens = TunedLens.required(lens, bundle)
    head = lens_head(bundle.model)
    _require_lens(bundle, n, len(columns), top_k, memory_mb)
    base: Any = bundle.model.base_model
    with inference(bundle.model):
        out = base(**{k: v for k, v in enc.items() if accepts_argument(base, k)}, output_hidden_states=True)
        hidden = out.hidden_states  # (layers + 1) x (1, n, hidden)
        index = torch.as_tensor(columns)
        inner = torch.stack([h[0, index] for h in hidden[:-1]])  # (layers, columns, hidden): before the final norm
        if lens is not None:
            inner = lens(inner.to(lens.weight.dtype)).to(inner.dtype)  # each layer through its translator
        final = out.last_hidden_state[0, index]  # (columns, hidden): what the model's own head reads
        at_read = out.last_hidden_state[0, read : read + 1]  # (1, hidden)
        del out, hidden
        rows, cols, width = inner.shape
        vocab = output_vocabulary(bundle.model)
        k = min(top_k, vocab)
        own_head = model_own_head(bundle.model)
        target_id = int(own_head(at_read).float()[0].argmax()) if target is None else token_id(tok, target, vocab)
        # Every layer and position through the head, CHUNK cells at a time: one multiply per chunk
        # keeps the CPU busy, and each chunk's logits are still in cache while they are normalised,
        # ranked and searched (208 ms against 288 ms in one piece, SmolLM2 at 19 tokens); and the
        # vocabulary is never held for every cell at once (4,096 positions of SmolLM2: 25 GB).
        flat = inner.reshape(rows * cols, width)
        tops, targets, ranks = [], [], []
        for states, project in ((flat, head), (final, own_head)):  # the layers, then the model's own output
            for start in range(0, states.shape[0], CHUNK):
                log_probs = torch.log_softmax(project(states[start : start + CHUNK]).float(), dim=-1)  # (chunk, vocab)
                chosen = log_probs[:, target_id].clone()  # a view would keep the whole chunk alive
                tops.append(log_probs.topk(k, dim=-1))
                targets.append(chosen)
                ranks.append((log_probs > chosen[:, None]).sum(-1, dtype=torch.int32))  # int64 sums are slower
        top_probs = torch.cat([t.values for t in tops]).exp().view(rows + 1, cols, k)
        top_ids = torch.cat([t.indices for t in tops]).view(rows + 1, cols, k)
        target_probs = torch.cat(targets).exp().view(rows + 1, cols)
        target_ranks = torch.cat(ranks).view(rows + 1, cols)
    enc_full = tok(model_text, return_offsets_mapping=True, return_special_tokens_mask=True, verbose=False)
    info = token_info(tok, enc_full, model_text)
    id_array = top_ids.cpu().numpy()
    names = {int(i): display_token(tok, int(i)) for i in np.unique(id_array)}
    top_tokens = [[[names[int(i)] for i in cell] for cell in row] for row in id_array]
    return LogitLensResult(
        model=bundle.name,
        text=text,
        tokens=info,
        layer_names=["embeddings"] + [f"layer {i}" for i in range(1, rows + 1)],
        top_ids=id_array,
        top_tokens=top_tokens,
        top_probs=top_probs.cpu().numpy(),
        target=target_id,
        target_name=display_token(tok, target_id),
        target_probs=target_probs.cpu().numpy(),
        target_ranks=target_ranks.cpu().numpy(),
        read_position=read,
        positions=columns,
        lens="logit lens" if lens is None else lens.label,
    )


def _check_positions(positions: Sequence[int] | None, n: int) -> list[int]:
    """The positions a call reads, as a list of indexes in range; every position by default."""
    if positions is None:
        return list(range(n))
    if isinstance(positions, (str, bytes)) or not isinstance(positions, Sequence | range) or not len(positions):
        raise ProbeError(f"positions must be a non-empty list of token positions, got {positions!r}.")
    chosen = []
    for p in positions:
        if not isinstance(p, (int, np.integer)) or isinstance(p, bool) or not -n <= int(p) < n:
            raise ProbeError(f"Position {p!r} is not a token position: the text has {n} tokens (0 to {n - 1}).")
        chosen.append(int(p) % n)
    return chosen


def _require_lens(bundle: ModelBundle, n: int, columns: int, top_k: int, memory_mb: int | None) -> None:
    """Raise ``MemoryBudgetError`` when the lens of ``n`` tokens (``columns`` read) cannot fit the budget."""
    shape = ModelShape.of(bundle.model)
    layers = shape.layers
    states = 4 * (layers + 1) * n * shape.hidden * 2  # every layer's hidden states, and the positions read
    forward = shape.fast_layer_bytes(n)  # one layer's activations at once
    chunk = 4 * CHUNK * output_vocabulary(bundle.model) * 4  # logits, log-probabilities, the rank comparison
    cells = (layers + 1) * columns * (top_k * 16 + 16 + 8 * top_k)  # top-k ids, probabilities and names kept
    require(
        states + forward + chunk + cells,
        memory_mb,
        f"the logit lens on {n:,} tokens of {bundle.name} ({layers + 1} rows × {columns:,} positions)",
        "a shorter text, or fewer positions (positions=[...])",
    )
