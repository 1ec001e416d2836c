"""ELECTRA's two models as one module: a small masked-LM generator that shares the discriminator's embeddings.

``ElectraPair`` runs a step of replaced-token detection (Clark et al. 2020): the generator predicts the masked
tokens, ``replace_masked`` fills them with its samples (no gradient through the sampling; a sample equal to
the original counts as original), and the discriminator says of every real token whether it was replaced.
``build_generator`` makes the generator: the discriminator's architecture and width with fewer layers, whose
embeddings module *is* the discriminator's, tied to its output decoder where the architecture ties them.
The task that trains the pair with the one loop is ``electra_task``.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from transformers.utils.generic import ModelOutput

from workbench.errors import TrainingError
from workbench.models.heads import masked_lm_parts
from workbench.models.hf import quiet_transformers
from workbench.models.objective_heads import freeze_unread_pooler
from workbench.training.metrics import flops_per_token

if TYPE_CHECKING:
    from transformers import PreTrainedModel


__all__ = [
    "Corruption",
    "ElectraOutput",
    "ElectraPair",
    "build_generator",
    "electra_flops_per_token",
    "place_like",
    "replace_masked",
    "share_embeddings",
]


@dataclasses.dataclass
class Corruption:
    """A batch as the discriminator reads it: every masked position filled with a generator's sample.

    ``corrupted`` and ``original`` are ids ``(batch, seq)``; ``replaced`` ``(batch, seq)`` is True exactly
    where the two differ (a sample equal to the original token is not a replacement)."""

    corrupted: torch.Tensor
    original: torch.Tensor
    replaced: torch.Tensor


def replace_masked(
    input_ids: torch.Tensor,
    labels: torch.Tensor,
    generator_logits: torch.Tensor,
    *,
    sampler: torch.Generator | None = None,
) -> Corruption:
    """Fill the masked positions of a masked-LM batch with tokens sampled from the generator's softmax.

    ``input_ids`` ``(batch, seq)`` and ``labels`` ``(batch, seq)`` are a masked-LM collator's (labels: the
    original id where a token was chosen for masking, -100 elsewhere); ``generator_logits``
    ``(n_masked, vocab)`` are the generator's at the masked positions, in row-major order. ``sampler``
    draws the samples (None: the global random state). Returns the ``Corruption``; nothing of it carries
    a gradient.
    """
    masked = labels != -100  # (batch, seq)
    original = torch.where(masked, labels, input_ids)  # (batch, seq): the text before masking
    corrupted = original.clone()
    if bool(masked.any()):
        probabilities = generator_logits.detach().float().softmax(-1)  # (n_masked, vocab)
        sampled = torch.multinomial(probabilities, 1, generator=sampler).squeeze(-1)  # (n_masked,)
        corrupted[masked] = sampled
    return Corruption(corrupted, original, corrupted != original)


@dataclasses.dataclass
class ElectraOutput(ModelOutput):
    """What one forward of an ``ElectraPair`` gives: the loss and its parts, and what evaluation counts.

    ``discriminator_logits``, ``replaced`` and ``real`` are ``(batch, seq)``: the logit that each token was
    replaced, whether it was, and whether it is a real token (not padding, not a special token)."""

    loss: torch.Tensor | None = None
    generator_loss: torch.Tensor | None = None
    discriminator_loss: torch.Tensor | None = None
    discriminator_logits: torch.Tensor | None = None
    replaced: torch.Tensor | None = None
    real: torch.Tensor | None = None


class ElectraPair(torch.nn.Module):
    """The generator, the discriminator and its head as one module, so Accelerate and DDP wrap all three.

    ``discriminator`` is an encoder (its ``last_hidden_state`` is read), ``generator`` a masked LM whose
    embeddings module is the discriminator's (``build_generator``)."""

    special_ids: torch.Tensor  # (specials,) the tokenizer's special ids: not judged by the discriminator

    def __init__(
        self,
        discriminator: PreTrainedModel,
        generator: PreTrainedModel,
        head: torch.nn.Module,
        *,
        special_ids: list[int],
        discriminator_weight: float,
    ) -> None:
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.head = head
        self.discriminator_weight = float(discriminator_weight)
        self.register_buffer("special_ids", torch.tensor(sorted(special_ids), dtype=torch.long), persistent=False)
        freeze_unread_pooler(discriminator)  # ELECTRA's discriminator has no pooler to train either

    def generator_parts(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        """(the generator's encoder, its output head), so the head runs at the masked positions alone."""
        parts = masked_lm_parts(self.generator)
        if parts is None:  # build_generator makes BERT- and ModernBERT-style masked LMs, whose heads are known
            raise TrainingError(f"The generator {type(self.generator).__name__}'s output head is not known.")
        base, head = parts
        return base, head

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        sampler: torch.Generator | None = None,
        **inputs: Any,
    ) -> ElectraOutput:
        """Generator loss, corruption, discriminator loss, for a masked-LM batch (see ``replace_masked``)."""
        if attention_mask is not None:
            inputs["attention_mask"] = attention_mask
        masked = labels != -100  # (batch, seq)
        base, head = self.generator_parts()
        hidden = base(input_ids=input_ids, **inputs).last_hidden_state  # (batch, seq, hidden)
        generator_logits = head(hidden[masked])  # (n_masked, vocab): the vocabulary head only where masked
        # Sum over the masked tokens divided by their count (at least 1): no NaN for a batch with none masked.
        generator_loss = F.cross_entropy(generator_logits.float(), labels[masked], reduction="sum")
        generator_loss = generator_loss / masked.sum().clamp(min=1)
        corruption = replace_masked(input_ids, labels, generator_logits, sampler=sampler)
        states = self.discriminator(input_ids=corruption.corrupted, **inputs).last_hidden_state  # (batch, seq, hidden)
        logits = self.head(states).float()  # (batch, seq)
        real = ~torch.isin(corruption.original, self.special_ids)  # (batch, seq)
        if attention_mask is not None:
            real &= attention_mask.bool()
        bce = F.binary_cross_entropy_with_logits(logits[real], corruption.replaced[real].float(), reduction="sum")
        discriminator_loss = bce / real.sum().clamp(min=1)
        return ElectraOutput(
            loss=generator_loss + self.discriminator_weight * discriminator_loss,
            generator_loss=generator_loss,
            discriminator_loss=discriminator_loss,
            discriminator_logits=logits,
            replaced=corruption.replaced,
            real=real,
        )


def build_generator(encoder: PreTrainedModel, layers: int, *, seed: int = 0) -> PreTrainedModel:
    """A fresh masked LM of ``encoder``'s architecture and width with ``layers`` layers, whose embeddings module
    is ``encoder``'s own (one set of weights; the output decoder tied to it where the architecture ties).

    Initialised from ``seed`` without touching the global random state. Raises ``TrainingError`` when the
    architecture has no masked-LM class or keeps its embeddings elsewhere than in ``.embeddings``."""
    import transformers

    config = copy.deepcopy(encoder.config)
    config.num_hidden_layers = layers
    if isinstance(getattr(config, "layer_types", None), list):  # ModernBERT: one attention type per layer
        config.layer_types = config.layer_types[:layers]
    config.architectures = None
    try:
        with torch.random.fork_rng(devices=[]), quiet_transformers():
            torch.manual_seed(seed)
            generator: PreTrainedModel = transformers.AutoModelForMaskedLM.from_config(config)
    except ValueError:
        raise TrainingError(
            f"A {config.model_type} encoder has no masked-LM class in transformers to build ELECTRA's generator "
            "from; use a BERT-style encoder (tiny-bert, minilm)."
        ) from None
    if not hasattr(encoder, "embeddings") or not hasattr(generator.base_model, "embeddings"):
        raise TrainingError(
            f"A {config.model_type} encoder keeps its embeddings where the replaced-token task cannot share them; "
            "use a BERT-style encoder (tiny-bert, minilm)."
        )
    place_like(generator, encoder)
    share_embeddings(encoder, generator)
    return generator


def share_embeddings(encoder: torch.nn.Module, generator: PreTrainedModel) -> None:
    """Make ``encoder``'s embeddings module the generator's own and tie the generator's decoder to it."""
    generator.base_model.embeddings = encoder.embeddings
    generator.tie_weights()


def electra_flops_per_token(
    discriminator: torch.nn.Module,
    generator: torch.nn.Module,
    head: torch.nn.Module,
    seq_len: int,
    mlm_probability: float,
) -> float:
    """Training FLOPs per token of an ELECTRA pair (forward and backward of both, as ``flops_per_token`` counts).

    The generator's vocabulary head runs at the masked share of positions only; the discriminator's body
    and ``head`` at every position. The shared embedding table is looked up, not multiplied (except where the
    generator's decoder multiplies by it, counted in its head). Sampling costs nothing worth counting."""
    generator_flops = flops_per_token(generator, seq_len, head_share=mlm_probability)
    # A bare encoder's only "head" is a pooler, which runs once per sequence.
    discriminator_flops = flops_per_token(discriminator, seq_len, head_share=1.0 / seq_len)
    return generator_flops + discriminator_flops + 6.0 * sum(p.numel() for p in head.parameters())


def place_like(module: Any, like: torch.nn.Module) -> torch.nn.Module:
    """``module`` moved to the device and dtype of ``like``'s weights (in place); returns it."""
    parameter = next(like.parameters())
    moved: torch.nn.Module = torch.nn.Module.to(module, device=parameter.device, dtype=parameter.dtype)
    return moved
