"""Next-sentence prediction (BERT, Devlin et al. 2019) and sentence-order prediction (ALBERT, Lan et al. 2020).

Both read a pair of segments ``[CLS] first [SEP] second [SEP]`` (``workbench.data.sentence_pairs``) and say,
from the first token's state, whether it is as written: the true next segment, or the two in their order.
A masked-LM bundle trains jointly, as BERT pretrains: its pairs are masked like the masked-LM task's blocks
and the loss is the masked-LM loss plus the pair loss. A bare encoder trains the pair head alone.

The head lives in ``bundle.heads[task name]`` (a ``PairHead``; a fresh one, seeded by ``config.seed``, where
the bundle has none, so a continued run keeps its head). The optimizer, Accelerate and DistributedDataParallel
see ``PairModel``: the model and its head as one module. Checkpoints are model folders with ``heads.safetensors``
beside the weights, so ``load_model(checkpoint)`` gives the model with its head back.

Example::

    bundle = load_model("tiny-bert", corpus="shakespeare")           # a masked LM: joint training
    Trainer(bundle, "sentence-order", "shakespeare", config=TrainConfig(max_steps=200)).fit()
    sentence_pair(bundle, "To be, or not to be.", "That is the question.").probability
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from transformers.utils.generic import ModelOutput

from workbench.data.sentence_pairs import sentence_pair_collator, sentence_pairs, takes_segment_ids
from workbench.errors import CheckpointError, ModelLoadError
from workbench.models.objective_heads import HEADS_FILE, freeze_unread_pooler, make_head, read_heads, seeded_head
from workbench.training.config import TaskName, TrainConfig
from workbench.training.metrics import flops_per_token
from workbench.training.tasks import MaskedLMTask, Task

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["NextSentenceTask", "PairModel", "PairOutput", "SentenceOrderTask"]

MaskedLMLoss = Callable[[Any, dict[str, Any]], tuple[torch.Tensor, int]]


@dataclass
class PairOutput(ModelOutput):
    """What ``PairModel`` returns: the loss (masked-LM + pair when joint), its parts, and the pair logits."""

    loss: torch.Tensor | None = None
    pair_loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    pair_logits: torch.Tensor | None = None  # (batch, 2): index 1 is "as written"


class PairModel(torch.nn.Module):
    """An encoder (or masked LM) and its pair head as one module, so Accelerate and DDP wrap both.

    ``masked_lm_loss`` is the masked-LM task's loss (joint training): it runs the model on the masked pairs,
    and the pair head reads the same pass's last hidden states, so the encoder runs once per batch.
    """

    def __init__(self, model: torch.nn.Module, head: torch.nn.Module, masked_lm_loss: MaskedLMLoss | None) -> None:
        super().__init__()
        self.model = model
        self.head = head
        self._masked_lm_loss = masked_lm_loss

    @property
    def config(self) -> Any:
        """The model's config (its layers and width count the attention FLOPs of a run in several processes)."""
        return self.model.config

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pair_labels: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> PairOutput:
        """``input_ids`` ``(batch, seq)`` of pairs, ``pair_labels`` ``(batch,)``; ``labels`` ``(batch, seq)``
        are the masked-LM labels (-100 where no token was masked) when training jointly."""
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        base: Any = getattr(self.model, "base_model", self.model)
        mlm_loss = None
        if self._masked_lm_loss is not None and labels is not None:
            with _last_hidden_state(base) as kept:
                mlm_loss, _ = self._masked_lm_loss(self.model, {**inputs, "labels": labels})
            hidden = kept[-1]  # (batch, seq, hidden)
        else:
            hidden = base(**inputs).last_hidden_state  # (batch, seq, hidden)
        pair_logits = self.head(hidden)  # (batch, 2)
        pair_loss = F.cross_entropy(pair_logits.float(), pair_labels)
        loss = pair_loss if mlm_loss is None else mlm_loss + pair_loss
        return PairOutput(loss=loss, pair_loss=pair_loss, mlm_loss=mlm_loss, pair_logits=pair_logits)


@contextlib.contextmanager
def _last_hidden_state(base: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """Keep the last hidden state ``(batch, seq, hidden)`` of every forward of ``base`` run inside; the hook is
    removed on every exit."""
    kept: list[torch.Tensor] = []
    handle = base.register_forward_hook(lambda module, args, output: kept.append(output[0]))
    try:
        yield kept
    finally:
        handle.remove()


class _PairTask(Task):
    """What next-sentence and sentence-order share: the pairs differ, the training does not."""

    kinds = ("masked-lm", "encoder")
    advice = (
        "a pair task needs an encoder: load one with kind='masked-lm' (trained jointly with masked-LM, as BERT) "
        "or kind='encoder' (the pair head alone)."
    )

    def __init__(self, bundle: ModelBundle, config: TrainConfig) -> None:
        super().__init__(bundle, config)
        self.joint = bundle.kind == "masked-lm"
        self.masked_lm = MaskedLMTask(bundle, config) if self.joint else None
        head = bundle.heads.get(self.name)
        if head is None:
            head = seeded_head(self.name, self._hidden, config.seed)
            bundle.heads[self.name] = head.to(bundle.device)
        freeze_unread_pooler(bundle.model)  # a BERT encoder's pooler: the pair head reads the first token itself
        self.pair_model = PairModel(bundle.model, head, self.masked_lm.loss if self.masked_lm is not None else None)
        self._segment_ids = takes_segment_ids(bundle.model)

    @property
    def _hidden(self) -> int:
        return int(self.bundle.config.hidden_size)

    # ------------------------------------------------------------- data

    def dataset(self, data: Any, role: str) -> Any:
        if isinstance(data, torch.utils.data.Dataset):
            return data
        return sentence_pairs(
            self.bundle.tokenizer,
            data,
            self.config.block_size,
            objective=self.name,  # type: ignore[arg-type]  # the two pair task names are the two objectives
            seed=self.config.seed,
        )

    def collator(self) -> Callable[[list[Any]], dict[str, Any]]:
        pad = sentence_pair_collator(self.bundle.tokenizer, token_type_ids=self._segment_ids)
        if self.masked_lm is None:
            return pad
        mask = self.masked_lm.collator()  # the masked-LM task's masking: 15%, 80/10/10, never a special token

        def collate(items: list[Any]) -> dict[str, Any]:
            batch = pad(items)
            rows = zip(batch["input_ids"], batch["attention_mask"], strict=True)
            masked = mask([{"input_ids": ids, "attention_mask": m} for ids, m in rows])
            batch["input_ids"], batch["labels"] = masked["input_ids"], masked["labels"]  # (batch, seq) each
            return batch

        return collate

    # ------------------------------------------------------------- what is trained

    def trainable(self) -> torch.nn.Module:
        return self.pair_model

    def adopt_trainable(self, module: torch.nn.Module) -> None:
        if not isinstance(module, PairModel):
            raise TypeError(f"The {self.name} task trains a PairModel, not a {type(module).__name__}.")
        self.pair_model = module
        self.bundle.model = module.model  # type: ignore[assignment]
        self.bundle.heads[self.name] = module.head

    def write_weights(self, folder: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """Write the model folder with the head in ``heads.safetensors``; ``state_dict`` is ``PairModel``'s,
        gathered from several processes (keys ``model.*`` and ``head.*``)."""
        if state_dict is None:
            self.bundle.write_files(folder)
            return
        model_weights = {k.removeprefix("model."): v for k, v in state_dict.items() if k.startswith("model.")}
        head = make_head(self.name, self._hidden)
        head.load_state_dict({k.removeprefix("head."): v for k, v in state_dict.items() if k.startswith("head.")})
        gathered = dataclasses.replace(self.bundle, heads={**self.bundle.heads, self.name: head})
        gathered.write_files(folder, state_dict=model_weights)

    def load_weights(self, folder: Path) -> None:
        """Load the model's weights and this task's head from a folder ``write_weights`` wrote.

        Raises ``CheckpointError`` when the folder's weights or head do not fit, or it holds no such head."""
        from workbench.training.checkpoint import load_model_weights

        load_model_weights(self.bundle.model, folder)
        try:
            saved = read_heads(Path(folder), self._hidden)
        except ModelLoadError as error:
            raise CheckpointError(str(error)) from None
        if self.name not in saved:
            raise CheckpointError(
                f"{folder} holds no {self.name} head (in {HEADS_FILE}), so it was not written by a {self.name} "
                "run; resume from a checkpoint of this task."
            )
        with torch.no_grad():
            self.pair_model.head.load_state_dict(saved[self.name].state_dict())

    # ------------------------------------------------------------- loss and evaluation

    def loss(self, model: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        out = model(**batch)
        self.note_part("pair_loss", out.pair_loss)
        if out.mlm_loss is not None:
            self.note_part("mlm_loss", out.mlm_loss)
        return out.loss, int(batch["attention_mask"].sum())

    def flops_per_token(self, seq_len: int, processes: int = 1) -> float:
        """The model's training FLOPs per token (the masked-LM head where tokens are masked, when joint) and
        the pair head's, which runs once per pair."""
        head = sum(p.numel() for p in self.pair_model.head.parameters())
        share = self.masked_lm.head_share(1) if self.masked_lm is not None else 1.0 / seq_len  # pooler, if any
        # The masked-LM head runs at the masked positions in any number of processes: inside PairModel's forward.
        return flops_per_token(self.bundle.model, seq_len, share) + 6.0 * head / seq_len

    def evaluate_parts(self, model: Any, batches: list[dict[str, Any]], autocast: Any) -> dict[str, Any]:
        pair_sum = mlm_sum = 0.0
        pairs = masked = correct = 0
        with torch.no_grad(), autocast():
            for batch in batches:
                out = model(**batch)
                labels = batch["pair_labels"]
                n = int(labels.numel())
                pair_sum += float(out.pair_loss) * n
                pairs += n
                correct += int((out.pair_logits.argmax(-1) == labels).sum())
                if out.mlm_loss is not None:
                    m = int((batch["labels"] != -100).sum())
                    mlm_sum += float(out.mlm_loss) * m
                    masked += m
        return {"pair_sum": pair_sum, "pairs": pairs, "correct": correct, "mlm_sum": mlm_sum, "masked": masked}

    def combine(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        pairs = max(sum(p["pairs"] for p in parts), 1)
        pair_loss = sum(p["pair_sum"] for p in parts) / pairs
        metrics = {
            "eval_loss": pair_loss,
            "eval_pair_loss": pair_loss,
            "eval_pair_accuracy": sum(p["correct"] for p in parts) / pairs,
        }
        if self.joint:
            mlm_loss = sum(p["mlm_sum"] for p in parts) / max(sum(p["masked"] for p in parts), 1)
            metrics |= {"eval_loss": mlm_loss + pair_loss, "eval_mlm_loss": mlm_loss}
        return metrics


class NextSentenceTask(_PairTask):
    """Is the second segment the one that follows the first in the corpus? (BERT's next-sentence prediction)"""

    name: ClassVar[TaskName] = "next-sentence"


class SentenceOrderTask(_PairTask):
    """Are two consecutive segments in their order, or swapped? (ALBERT's sentence-order prediction)"""

    name: ClassVar[TaskName] = "sentence-order"
