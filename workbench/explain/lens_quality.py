"""How well each layer, read through a lens, predicts what the model finally predicts.

``lens_quality`` reads held-out texts through the logit lens and, given one, a tuned lens, and gives per
layer the mean KL divergence from the model's final distribution (Belrose et al. 2023's measure) and the
perplexity of the true token: the next one for a causal LM, the masked one for a masked LM (15% of the
tokens masked with a seeded draw).

Example::

    quality = lens_quality(bundle, held_out_texts, load_tuned_lens("runs/lens", bundle))
    quality.kl_logit, quality.kl_tuned, quality.layers_better
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from workbench.errors import ProbeError
from workbench.explain.budget import require
from workbench.explain.footprint import ModelShape
from workbench.explain.inputs import accepts_argument, inference
from workbench.explain.lens import lens_head
from workbench.models.heads import own_head
from workbench.training.lens_task import lens_cells_kl
from workbench.training.tuned_lens import TunedLens

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["LensQualityResult", "lens_quality"]


@dataclass
class LensQualityResult:
    """Per-layer KL to the model's output and perplexity of the true token, for the logit lens and a tuned lens.

    Arrays are ``(rows,)``: row 0 the embeddings, row ``i`` layer ``i``; the last row is the model's output
    (KL 0, the model's own perplexity). The ``_tuned`` arrays are None when no tuned lens was given.
    """

    model: str
    lens: str  # the tuned lens's label; "" when none was given
    layer_names: list[str]
    kl_logit: np.ndarray  # (rows,) nats
    kl_tuned: np.ndarray | None
    perplexity_logit: np.ndarray  # (rows,)
    perplexity_tuned: np.ndarray | None
    positions: int
    texts: int

    @property
    def layers_better(self) -> float | None:
        """The share of layers (the output row excluded) where the tuned lens is closer to the output than the
        logit lens; None without a tuned lens."""
        if self.kl_tuned is None:
            return None
        return float(np.mean(self.kl_tuned[:-1] < self.kl_logit[:-1]))

    def to_dict(self) -> dict[str, Any]:
        def rounded(values: np.ndarray | None) -> list[float] | None:
            return None if values is None else [round(float(v), 6) for v in values]

        return {
            "model": self.model,
            "lens": self.lens,
            "layer_names": self.layer_names,
            "kl_logit": rounded(self.kl_logit),
            "kl_tuned": rounded(self.kl_tuned),
            "perplexity_logit": rounded(self.perplexity_logit),
            "perplexity_tuned": rounded(self.perplexity_tuned),
            "layers_better": self.layers_better,
            "positions": self.positions,
            "texts": self.texts,
        }

    def __repr__(self) -> str:
        tuned = "" if self.kl_tuned is None else f", {self.lens} better at {self.layers_better:.0%} of layers"
        return (
            f"LensQualityResult({self.model}, {len(self.layer_names)} rows over {self.positions} positions of "
            f"{self.texts} texts; mean KL logit lens {float(self.kl_logit[:-1].mean()):.3f}{tuned})"
        )


def lens_quality(
    bundle: ModelBundle,
    texts: Sequence[str],
    lens: TunedLens | None = None,
    *,
    max_length: int = 128,
    seed: int = 0,
    memory_mb: int | None = None,
) -> LensQualityResult:
    """Per-layer KL to the final distribution and perplexity, for the logit lens and (given) a tuned lens.

    ``texts`` are held-out texts (a list, or a ``Corpus``), each read up to ``max_length`` tokens. A causal
    LM is read at every position; a masked LM at 15% of the tokens, masked with a draw seeded by ``seed``.
    Raises ``ProbeError`` for no texts, a model that is not a language model, or a lens trained for
    another model, and ``MemoryBudgetError`` when one text cannot fit ``memory_mb``.
    """
    texts = _check_texts(texts)
    if bundle.kind not in ("masked-lm", "causal-lm"):
        raise ProbeError(f"Lens quality needs a language model; {bundle.name} is a {bundle.kind} model.")
    if lens is not None:
        lens = TunedLens.required(lens, bundle)
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2:
        raise ProbeError(f"max_length must be a whole number of tokens, 2 or more; got {max_length!r}.")
    max_length = min(max_length, bundle.max_positions)
    _require_quality(bundle, max_length, memory_mb)
    rows = int(bundle.model.config.num_hidden_layers)
    sums = {key: np.zeros(rows + 1) for key in ("kl_logit", "kl_tuned", "ce_logit", "ce_tuned")}
    read_count, scored_count = 0, 0
    head, final_head = lens_head(bundle.model), own_head(bundle.model)
    generator = torch.Generator().manual_seed(seed)
    base: Any = bundle.model.base_model
    with inference(bundle.model):
        for text in texts:
            enc, read, true_ids = _encode(bundle, text, max_length, generator)
            if not len(read):
                continue
            out = base(**{k: v for k, v in enc.items() if accepts_argument(base, k)}, output_hidden_states=True)
            inner = torch.stack([h[0, read] for h in out.hidden_states[:-1]])  # (rows, read, hidden)
            target = torch.log_softmax(final_head(out.last_hidden_state[0, read]).float(), dim=-1)  # (read, vocab)
            scored = true_ids >= 0  # (read,): where the true token is known
            owner = torch.arange(len(read)).repeat(rows)  # (rows * read,)
            reads = {"logit": inner}
            if lens is not None:
                reads["tuned"] = lens(inner.to(lens.weight.dtype)).to(inner.dtype)
            for name, states in reads.items():
                kl_rows, ce_rows = [], []
                for chunk in lens_cells_kl(states.reshape(-1, states.shape[-1]), head, target, owner):
                    truth = true_ids[owner[chunk.cells]]  # (chunk,)
                    kl_rows.append(chunk.kl)
                    ce_rows.append(-chunk.log_q.gather(1, truth.clamp(min=0)[:, None])[:, 0] * (truth >= 0))
                sums[f"kl_{name}"][:-1] += torch.cat(kl_rows).view(rows, -1).sum(-1).double().numpy()
                sums[f"ce_{name}"][:-1] += torch.cat(ce_rows).view(rows, -1).sum(-1).double().numpy()
            own = -target.gather(1, true_ids.clamp(min=0)[:, None])[:, 0] * scored  # the model's own output row
            for name in reads:
                sums[f"ce_{name}"][-1] += float(own.sum())
            read_count += len(read)
            scored_count += int(scored.sum())
    if not read_count or not scored_count:
        raise ProbeError("The texts gave no token to score; give longer held-out texts (two tokens or more each).")
    mean = {key: value / (read_count if key.startswith("kl") else scored_count) for key, value in sums.items()}
    return LensQualityResult(
        model=bundle.name,
        lens="" if lens is None else lens.label,
        layer_names=["embeddings"] + [f"layer {i}" for i in range(1, rows + 1)],
        kl_logit=mean["kl_logit"],
        kl_tuned=None if lens is None else mean["kl_tuned"],
        perplexity_logit=np.exp(mean["ce_logit"]),
        perplexity_tuned=None if lens is None else np.exp(mean["ce_tuned"]),
        positions=read_count,
        texts=len(texts),
    )


def _check_texts(texts: object) -> list[str]:
    found = getattr(texts, "texts", texts)  # a Corpus holds its texts
    if isinstance(found, str) or not isinstance(found, Sequence):
        raise ProbeError(
            f"texts must be a list of held-out texts (or a Corpus), not {type(texts).__name__}; "
            "wrap a single text in a list."
        )
    kept = [t for t in found if isinstance(t, str) and t.strip()]
    if len(kept) != len(found) or not kept:
        raise ProbeError("texts must be non-empty strings, at least one; drop the empty or non-text entries.")
    return kept


def _encode(
    bundle: ModelBundle, text: str, max_length: int, generator: torch.Generator
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The model's input for ``text``, the positions read ``(read,)``, and the true token at each ``(read,)``
    (-1 where there is none: a causal LM's last position)."""
    tok = bundle.tokenizer
    masked = bundle.kind == "masked-lm"
    enc = tok(text, return_tensors="pt", truncation=True, max_length=max_length, add_special_tokens=masked)
    enc = {k: v.to(bundle.device) for k, v in enc.items()}
    ids = enc["input_ids"][0]
    if not masked:
        read = torch.arange(len(ids))
        true_ids = torch.cat([ids[1:].cpu(), torch.tensor([-1])])
        return enc, read, true_ids
    specials = set(tok.all_special_ids)
    special = torch.tensor([int(i) in specials for i in ids.tolist()])
    ordinary = (~special).nonzero().squeeze(1)
    if not len(ordinary):
        return enc, ordinary, ordinary
    draw = torch.rand(len(ordinary), generator=generator) < 0.15
    if not draw.any():
        draw[int(torch.randint(len(ordinary), (1,), generator=generator))] = True
    read = ordinary[draw]
    true_ids = ids[read].cpu().clone()
    enc["input_ids"] = ids.clone()[None]
    enc["input_ids"][0, read] = tok.mask_token_id
    return enc, read, true_ids


def _require_quality(bundle: ModelBundle, n: int, memory_mb: int | None) -> None:
    """Raise ``MemoryBudgetError`` when one text of ``n`` tokens cannot be read through every layer within budget."""
    shape = ModelShape.of(bundle.model)
    vocab = int(bundle.model.config.vocab_size)
    states = 4 * (shape.layers + 1) * n * shape.hidden * 3  # hidden states, the positions read, translated
    chunk = 4 * 256 * vocab * 4  # one chunk's logits, log-probabilities and target
    require(
        states + shape.fast_layer_bytes(n) + chunk + 4 * n * vocab,
        memory_mb,
        f"lens quality on {n:,} tokens of {bundle.name} ({shape.layers + 1} rows)",
        "a smaller max_length",
    )
