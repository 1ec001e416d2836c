"""The ``"replaced-token"`` task: ELECTRA's replaced-token detection (Clark et al. 2020) with the one loop.

A small masked-LM *generator* fills in the masked tokens of a batch with tokens it samples from its own
predictions; the *discriminator* (the bundle: an encoder) reads the corrupted text and says, token by token,
whether each was replaced (``ReplacedTokenHead``: one logit per token). Both train together on

    loss = generator MLM loss (at the masked positions) + discriminator_weight · discriminator BCE (every real token)

with ``discriminator_weight`` = λ = 50 as in the paper. The generator is the discriminator's architecture
with fewer layers (``generator_layers``; None: a quarter) and *shares its embeddings module*: one set of
token embeddings that both models' losses train, tied to the generator's output decoder where the
architecture ties them. A sampled token equal to the original counts as original, as in the paper, and no
gradient flows through the sampling: the generator learns from its MLM loss alone.

After training the discriminator is the model to keep: ``write_weights`` saves it as an ordinary model
folder with its ``replaced-token`` head beside it (``load_model(folder)``; ``kind="classifier"`` fine-tunes
it), and the generator as a masked LM in ``folder/generator``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import torch

from workbench.errors import CheckpointError, ConfigError, ModelLoadError, TrainingError
from workbench.models.bundle import ModelBundle
from workbench.models.objective_heads import (
    REPLACED_TOKEN,
    ReplacedTokenHead,
    encoder_of,
    make_head,
    read_heads,
    seeded_head,
)
from workbench.training.checkpoint import load_model_weights
from workbench.training.config import TaskName, TrainConfig
from workbench.training.electra_pair import (
    ElectraPair,
    build_generator,
    electra_flops_per_token,
    place_like,
    share_embeddings,
)
from workbench.training.tasks import Task, make_data_task

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = ["GENERATOR_FOLDER", "ReplacedTokenTask"]

GENERATOR_FOLDER = "generator"  # inside a saved discriminator's folder: the generator, a masked-LM model folder


class ReplacedTokenTask(Task):
    """ELECTRA: the bundle (an encoder) learns to tell replaced tokens, a small generator learns to replace them.

    Data and masking are the masked-LM task's (the generator's). The trained generator is ``task.generator``
    (a ``ModelBundle``); the discriminator's head is ``bundle.heads["replaced-token"]``. ``resume_from`` a
    checkpoint brings the generator back with the rest; a new run on a saved discriminator keeps its head but
    starts a fresh generator (its saved one is in the folder's ``generator/``, a masked LM ``load_model`` reads)."""

    name: ClassVar[TaskName] = "replaced-token"
    kinds = ("encoder", "masked-lm")
    advice = (
        "ELECTRA's discriminator is an encoder: load one with kind='encoder' (load_model('tiny-bert', kind='encoder') "
        "or load_model('minilm'))."
    )

    def __init__(self, bundle: ModelBundle, config: TrainConfig) -> None:
        super().__init__(bundle, config)
        if bundle.tokenizer.mask_token is None:
            raise TrainingError(
                f"{bundle.name}'s tokenizer has no mask token, and ELECTRA's generator learns by filling in masks; "
                "use a BERT-style tokenizer (tiny-bert, minilm)."
            )
        encoder = encoder_of(bundle)
        layers = int(encoder.config.num_hidden_layers)
        wanted = config.generator_layers or max(1, layers // 4)
        if wanted > layers:
            raise ConfigError(
                f"generator_layers={wanted} is more than the discriminator's {layers} layers; ELECTRA's generator is "
                f"the smaller model: use 1 to {layers} (None picks a quarter of the layers)."
            )
        self.generator = ModelBundle(
            build_generator(encoder, wanted, seed=config.seed),
            bundle.tokenizer,
            "masked-lm",
            f"{bundle.name} generator",
            f"generator:{bundle.source}",
        )
        head = bundle.heads.get(REPLACED_TOKEN)
        if not isinstance(head, ReplacedTokenHead):
            head = seeded_head(REPLACED_TOKEN, int(encoder.config.hidden_size), config.seed)
        bundle.heads[REPLACED_TOKEN] = place_like(head, encoder)
        self.pair = ElectraPair(
            encoder,
            cast("PreTrainedModel", self.generator.model),
            head,
            special_ids=list(bundle.tokenizer.all_special_ids),
            discriminator_weight=config.discriminator_weight,
        )
        self.masking = make_data_task("masked-lm", self.generator, config)  # the blocks and masks the generator learns

    def dataset(self, data: Any, role: str) -> Any:
        return self.masking.dataset(data, role)

    def collator(self) -> Callable[[list[Any]], dict[str, Any]]:
        return self.masking.collator()

    # ------------------------------------------------------------- what trains, and how it is kept

    def trainable(self) -> torch.nn.Module:
        return self.pair

    def adopt_trainable(self, module: torch.nn.Module) -> None:
        if not isinstance(module, ElectraPair):
            raise TrainingError(f"The replaced-token task trains an ElectraPair, not a {type(module).__name__}.")
        self.pair = module
        self.generator.model = module.generator
        self.bundle.heads[REPLACED_TOKEN] = module.head
        if self.bundle.kind == "encoder":
            self.bundle.model = module.discriminator
        else:  # a masked LM's own head stays with it, on the device its encoder moved to
            setattr(self.bundle.model, str(self.bundle.model.base_model_prefix), module.discriminator)
            place_like(self.bundle.model, module.discriminator)

    def write_weights(self, folder: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """The discriminator's model folder with its head in ``folder``, the generator's in ``folder/generator``.

        ``state_dict`` is the pair's (gathered from several processes), split here by part."""
        discriminator = generator = None
        bundle = self.bundle
        if state_dict is not None:
            discriminator = _part(state_dict, "discriminator.")
            generator = _part(state_dict, "generator.")
            head = make_head(REPLACED_TOKEN, int(encoder_of(bundle).config.hidden_size))
            head.load_state_dict(_part(state_dict, "head."))
            bundle = dataclasses.replace(bundle, heads={**bundle.heads, REPLACED_TOKEN: head})
            if bundle.kind != "encoder":  # the model folder holds the masked LM: its own head, this encoder
                prefix = bundle.model.base_model_prefix
                own = bundle.model.state_dict()
                discriminator = {**own, **{f"{prefix}.{key}": value for key, value in discriminator.items()}}
        bundle.write_files(folder, state_dict=discriminator)
        (Path(folder) / GENERATOR_FOLDER).mkdir(exist_ok=True)
        self.generator.write_files(Path(folder) / GENERATOR_FOLDER, state_dict=generator)

    def load_weights(self, folder: Path) -> None:
        """Load the discriminator, its head and the generator from a folder ``write_weights`` wrote, in place
        (the optimizer keeps its tensors), and share the embeddings again. Raises ``CheckpointError`` when a
        part is missing."""
        folder = Path(folder)
        load_model_weights(self.bundle.model, folder)
        try:
            saved = read_heads(folder, int(encoder_of(self.bundle).config.hidden_size)).get(REPLACED_TOKEN)
        except ModelLoadError as error:
            raise CheckpointError(str(error)) from None
        if saved is None or not (folder / GENERATOR_FOLDER).is_dir():
            raise CheckpointError(
                f"{folder} holds no replaced-token head and generator; resume from a checkpoint of a "
                "'replaced-token' run."
            )
        with torch.no_grad():
            self.pair.head.load_state_dict(saved.state_dict())
        load_model_weights(self.pair.generator, folder / GENERATOR_FOLDER)
        share_embeddings(self.pair.discriminator, self.pair.generator)

    # ------------------------------------------------------------- loss, cost and evaluation

    def loss(self, model: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        out = model(**batch)
        self.note_part("generator_loss", out.generator_loss)
        self.note_part("discriminator_loss", out.discriminator_loss)
        return out.loss, int(batch["input_ids"].numel())

    def head_share(self, processes: int) -> float:
        return self.config.mlm_probability  # the generator's vocabulary head, at the masked positions only

    def flops_per_token(self, seq_len: int, processes: int = 1) -> float:
        """Training FLOPs per token of generator and discriminator together (``electra_flops_per_token``): what
        a comparison with masked-LM pretraining at the same compute counts. The same for any number of processes."""
        return electra_flops_per_token(
            self.pair.discriminator, self.pair.generator, self.pair.head, seq_len, self.config.mlm_probability
        )

    def evaluate_parts(self, model: Any, batches: list[dict[str, Any]], autocast: Any) -> dict[str, Any]:
        sums = dict.fromkeys(
            ("generator", "discriminator", "masked", "real", "correct", "hits", "flagged", "replaced"), 0.0
        )
        if not batches:
            return sums
        # Its own seeded sampler: every evaluation corrupts alike, and training's random state is left alone.
        sampler = torch.Generator(device=batches[0]["input_ids"].device).manual_seed(self.config.seed)
        with torch.no_grad(), autocast():
            for batch in batches:
                out = model(**batch, sampler=sampler)
                real, replaced = out.real, out.replaced
                flagged = out.discriminator_logits > 0  # (batch, seq): the discriminator says "replaced"
                masked = float((batch["labels"] != -100).sum())
                sums["generator"] += float(out.generator_loss) * masked
                sums["discriminator"] += float(out.discriminator_loss) * float(real.sum())
                sums["masked"] += masked
                sums["real"] += float(real.sum())
                sums["correct"] += float(((flagged == replaced) & real).sum())
                sums["hits"] += float((flagged & replaced & real).sum())
                sums["flagged"] += float((flagged & real).sum())
                sums["replaced"] += float((replaced & real).sum())
        return sums

    def combine(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        """Losses per masked (generator) and per real token (discriminator), and the discriminator's accuracy,
        precision and recall on "replaced" (precision 0 where it flagged nothing, recall 0 where nothing was)."""
        total = {key: sum(float(p[key]) for p in parts) for key in parts[0]}
        generator = total["generator"] / max(total["masked"], 1.0)
        discriminator = total["discriminator"] / max(total["real"], 1.0)
        return {
            "eval_loss": generator + self.config.discriminator_weight * discriminator,
            "eval_generator_loss": generator,
            "eval_discriminator_loss": discriminator,
            "eval_replaced_accuracy": total["correct"] / total["real"] if total["real"] else math.nan,
            "eval_replaced_precision": total["hits"] / total["flagged"] if total["flagged"] else 0.0,
            "eval_replaced_recall": total["hits"] / total["replaced"] if total["replaced"] else 0.0,
            "eval_replaced_share": total["replaced"] / total["real"] if total["real"] else math.nan,
        }


def _part(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)}
