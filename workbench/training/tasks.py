"""The tasks of the one loop: each picks its data set, collator, loss and metrics, and what it trains.

Masked-LM, causal-LM and classification train the model itself; the tuned lens (``lens_task``) trains a
readout of a frozen model, so a task also says which module the optimizer updates and what a checkpoint
writes and reads.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from workbench.errors import ConfigError, DataError, TrainingError
from workbench.models.heads import masked_lm_parts
from workbench.training.config import TASKS, TaskName, TrainConfig
from workbench.training.metrics import classification_metrics, flops_per_token, perplexity

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["Task", "make_data_task", "make_task"]


class Task(abc.ABC):
    """How one kind of training turns data into batches, batches into a loss, and logits into metrics."""

    name: ClassVar[TaskName]
    kinds: tuple[str, ...] = ()
    advice = ""
    length_field = "block_size"  # the config field that bounds an input's length
    several_processes = True  # False for a readout of a frozen model, which trains in one process

    def __init__(self, bundle: ModelBundle, config: TrainConfig) -> None:
        self._parts: dict[str, list[torch.Tensor]] = {}
        if bundle.kind not in self.kinds:
            raise TrainingError(f"Task {self.name!r} does not fit a {bundle.kind} model ({bundle.name}); {self.advice}")
        self.bundle, self.config = bundle, config
        length_field = self.length_field
        length = getattr(config, length_field)
        if length > bundle.max_positions:
            raise ConfigError(
                f"{length_field}={length} is longer than {bundle.name} allows ({bundle.max_positions} positions); "
                f"set {length_field}={bundle.max_positions} or less."
            )

    @abc.abstractmethod
    def dataset(self, data: Any, role: str) -> Any:
        """A torch Dataset built from ``data`` (``role`` names it in error sentences)."""

    @abc.abstractmethod
    def collator(self) -> Callable[[list[Any]], dict[str, Any]]:
        """The function that turns a list of examples into a batch."""

    def order(self, dataset: Any, epoch: int, batch_size: int | None = None) -> list[int]:
        """The order of examples in an epoch: a seeded shuffle, the same after a resume.

        ``batch_size`` is the global batch (every process's share together), for orders that group by it.
        """
        g = torch.Generator().manual_seed(self.config.seed * 1000 + epoch)
        return torch.randperm(len(dataset), generator=g).tolist()

    def loss(self, model: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        """The mean loss of a batch and the number of tokens it holds."""
        out = model(**batch)
        return out.loss, int(batch["input_ids"].numel())

    def head_share(self, processes: int) -> float:
        """The share of positions where the output head runs (for the FLOPs count): every one by default."""
        return 1.0

    def flops_per_token(self, seq_len: int, processes: int = 1) -> float:
        """Training FLOPs per token in a run of ``processes`` processes, for the MFU shown while training."""
        return flops_per_token(self.bundle.model, seq_len, self.head_share(processes))

    weights_file = "model.safetensors"  # what a checkpoint holds of what this task trains

    def trainable(self) -> torch.nn.Module:
        """The module whose weights the optimizer updates: the model itself, unless the task trains a readout."""
        model: torch.nn.Module = self.bundle.model
        return model

    def adopt_trainable(self, module: torch.nn.Module) -> None:
        """Keep ``module`` (the trainable, as Accelerate hands it back unwrapped) as the one the task trains."""
        self.bundle.model = module  # type: ignore[assignment]

    def write_weights(self, folder: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """Write what this task trains into a checkpoint folder (the model's files: the folder is a model folder)."""
        self.bundle.write_files(folder, state_dict=state_dict)

    def load_weights(self, folder: Path) -> None:
        """Load what this task trains from a checkpoint folder written by ``write_weights``."""
        from workbench.training.checkpoint import load_model_weights

        load_model_weights(self.bundle.model, folder)

    def note_part(self, name: str, value: torch.Tensor) -> None:
        """Keep one micro-batch's value of a part of the loss (``"generator_loss"``), for the next log record."""
        self._parts.setdefault(name, []).append(value.detach().float())

    def log_parts(self, micro_batches: int = 1) -> dict[str, float]:
        """Each part of the loss over the last step's ``micro_batches`` (``{}`` for a loss of one part): the step
        whose loss the log record shows, so the parts add up to it. Clears what was noted.

        The loop adds them to the log record beside ``loss``; the dashboard draws every ``*_loss`` it finds there.
        Under several processes they are the main process's own batches' (the loss itself is every process's)."""
        parts = {
            name: float(torch.stack(values[-micro_batches:]).mean()) for name, values in self._parts.items() if values
        }
        self._parts.clear()
        return parts

    def on_step(self, step: int) -> None:  # noqa: B027 - a hook most tasks leave empty, like a callback's
        """Called after every optimizer step with the new step count (a readout keeps how long it trained)."""

    def evaluate(self, model: Any, batches: list[dict[str, Any]], autocast: Any) -> dict[str, Any]:
        """Metrics over ``batches``, computed under ``autocast``."""
        return self.combine([self.evaluate_parts(model, batches, autocast)])

    @abc.abstractmethod
    def evaluate_parts(self, model: Any, batches: list[dict[str, Any]], autocast: Any) -> dict[str, Any]:
        """The sums behind the metrics over ``batches``: one process's share of an evaluation."""

    @abc.abstractmethod
    def combine(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        """Metrics from the parts of every process (``evaluate_parts``), as if one process had seen every batch."""


def _as_corpus(data: Any) -> Any:
    from workbench.data import load_corpus

    if isinstance(data, (str, list, tuple)):
        return load_corpus(data)
    return data


class _LanguageModelTask(Task):
    add_special_tokens = False

    def dataset(self, data: Any, role: str) -> Any:
        from workbench.data import token_blocks

        if isinstance(data, torch.utils.data.Dataset):
            return data
        return token_blocks(
            self.bundle.tokenizer, _as_corpus(data), self.config.block_size, add_special_tokens=self.add_special_tokens
        )

    def evaluate_parts(self, model: Any, batches: list[dict[str, Any]], autocast: Any) -> dict[str, Any]:
        total, tokens = 0.0, 0
        with torch.no_grad(), autocast():
            for batch in batches:
                loss, _ = self.loss(model, batch)
                n = self._loss_tokens(batch)
                total += float(loss) * n
                tokens += n
        return {"loss_sum": total, "count": tokens}

    def combine(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        mean = sum(p["loss_sum"] for p in parts) / max(sum(p["count"] for p in parts), 1)
        return {"eval_loss": mean, "eval_perplexity": perplexity(mean)}

    def _loss_tokens(self, batch: dict[str, Any]) -> int:
        return int(batch["input_ids"].numel())


class MaskedLMTask(_LanguageModelTask):
    name: ClassVar[TaskName] = "masked-lm"
    kinds = ("masked-lm",)
    advice = "load it with kind='masked-lm' to add a masked-LM head."
    add_special_tokens = True

    def __init__(self, bundle: ModelBundle, config: TrainConfig) -> None:
        super().__init__(bundle, config)
        if bundle.tokenizer.mask_token is None:
            raise TrainingError(f"{bundle.name}'s tokenizer has no mask token, so it cannot be trained as a masked LM.")
        self._head = masked_lm_parts(bundle.model) if config.sparse_mlm_head else None

    def collator(self) -> Callable[[list[Any]], dict[str, Any]]:
        from workbench.data import masked_lm_collator

        inner = masked_lm_collator(self.bundle.tokenizer, mlm_probability=self.config.mlm_probability)
        mask_id = self.bundle.tokenizer.mask_token_id
        special = set(self.bundle.tokenizer.all_special_ids)

        def collate(items: list[Any]) -> dict[str, Any]:
            batch: dict[str, Any] = inner(items)
            if not bool((batch["labels"] != -100).any()):
                _mask_one(batch, mask_id, special)
            return batch

        return collate

    def loss(self, model: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        tokens = int(batch["input_ids"].numel())
        labels = batch["labels"]
        masked = labels != -100  # (batch, seq)
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        if self._head is None or model is not self.bundle.model:
            # Wrapped for several processes (DistributedDataParallel, FSDP): gradients are shared only through
            # the wrapper's forward, so the whole model runs; the head on all positions is the price.
            logits = model(**inputs).logits[masked]  # (n_masked, vocab)
        else:
            # The output head runs only where a token was masked (~15%): same loss, far less work.
            base, head = self._head
            hidden = base(**inputs).last_hidden_state  # (batch, seq, hidden)
            logits = head(hidden[masked])  # (n_masked, vocab)
        # Sum over the masked tokens divided by their count (at least 1): a batch where no token
        # happened to be masked gives a loss of 0, not the NaN of a mean over nothing, and no sync.
        total = F.cross_entropy(logits.float(), labels[masked], reduction="sum")
        return total / masked.sum().clamp(min=1), tokens

    def _loss_tokens(self, batch: dict[str, Any]) -> int:
        return int((batch["labels"] != -100).sum())

    def head_share(self, processes: int) -> float:
        # The sparse head runs at the masked positions only; wrapped for several processes, it runs at all.
        return self.config.mlm_probability if self._head is not None and processes == 1 else 1.0


def _mask_one(batch: dict[str, Any], mask_id: int, special: set[int]) -> None:
    """A batch whose random draw masked nothing would teach nothing and log a loss of 0 (a small batch
    of short blocks draws that now and then): mask one ordinary token of it, chosen at random."""
    ids = batch["input_ids"]
    candidates = [(r, c) for r in range(ids.shape[0]) for c in range(ids.shape[1]) if int(ids[r, c]) not in special]
    if not candidates:
        return
    r, c = candidates[int(torch.randint(len(candidates), (1,)))]
    batch["labels"][r, c] = ids[r, c]
    ids[r, c] = mask_id


class CausalLMTask(_LanguageModelTask):
    name: ClassVar[TaskName] = "causal-lm"
    kinds = ("causal-lm",)
    advice = "causal-LM training needs a decoder such as smollm2-135m or tiny-gpt; train an encoder with 'masked-lm'."

    def collator(self) -> Callable[[list[Any]], dict[str, Any]]:
        from workbench.data import causal_lm_collator

        return causal_lm_collator(self.bundle.tokenizer)


class ClassifyTask(Task):
    name: ClassVar[TaskName] = "classify"
    length_field = "max_length"
    kinds = ("classifier",)
    advice = "load it with kind='classifier' and label_names=[...] to add a classification head."

    def dataset(self, data: Any, role: str) -> Any:
        from workbench.data import LabelledData, classification_dataset, load_labelled

        if isinstance(data, torch.utils.data.Dataset):
            return data
        if isinstance(data, str) or (isinstance(data, (list, tuple)) and data and isinstance(data[0], (list, tuple))):
            data = load_labelled(data)
        if not isinstance(data, LabelledData):
            raise DataError(
                f"Classification needs labelled data (LabelledData, a registry name, or (text, label) pairs); "
                f"got {type(data).__name__}. Texts without labels cannot train a classifier."
            )
        num_labels = self._num_labels()
        bad = [y for y in data.labels if not 0 <= y < num_labels]
        if bad or len(data.label_names) > num_labels:
            raise DataError(
                f"The {role} data has {len(data.label_names)} labels ({', '.join(data.label_names)}) but the "
                f"classifier has {num_labels}; load the model with label_names={data.label_names!r}."
            )
        self._adopt_label_names(data.label_names)
        return classification_dataset(self.bundle.tokenizer, data, max_length=self.config.max_length)

    def _num_labels(self) -> int:
        return int(self.bundle.model.config.num_labels or 0)

    def _adopt_label_names(self, names: Sequence[str]) -> None:
        cfg = self.bundle.model.config
        labels: dict[Any, str] = dict(cfg.id2label or {})
        generic = all(str(labels.get(i, "")).startswith("LABEL_") for i in range(self._num_labels()))
        if generic and len(names) == self._num_labels():
            cfg.id2label = dict(enumerate(names))
            cfg.label2id = {n: i for i, n in enumerate(names)}

    def collator(self) -> Callable[[list[Any]], dict[str, Any]]:
        from workbench.data import classification_collator

        return classification_collator(self.bundle.tokenizer)

    def order(self, dataset: Any, epoch: int, batch_size: int | None = None) -> list[int]:
        if not self.config.group_by_length:
            return super().order(dataset, epoch)
        from workbench.data import length_grouped_order

        lengths = [len(dataset[i]["input_ids"]) for i in range(len(dataset))]
        return length_grouped_order(lengths, batch_size or self.config.batch_size, seed=self.config.seed * 1000 + epoch)

    def loss(self, model: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        out = model(**batch)
        return out.loss, int(batch["attention_mask"].sum())

    def head_share(self, processes: int) -> float:
        # The pooler and the classifier run once per sequence, on its first token.
        return 1.0 / self.config.max_length

    def evaluate_parts(self, model: Any, batches: list[dict[str, Any]], autocast: Any) -> dict[str, Any]:
        total, count, predictions, labels = 0.0, 0, [], []
        with torch.no_grad(), autocast():
            for batch in batches:
                out = model(**batch)
                n = int(batch["labels"].shape[0])
                total += float(out.loss) * n
                count += n
                predictions += out.logits.argmax(-1).cpu().tolist()
                labels += batch["labels"].cpu().tolist()
        return {"loss_sum": total, "count": count, "predictions": predictions, "labels": labels}

    def combine(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        predictions = [p for part in parts for p in part["predictions"]]
        labels = [y for part in parts for y in part["labels"]]
        metrics = classification_metrics(
            np.asarray(predictions, dtype=np.int64),
            np.asarray(labels, dtype=np.int64),
            self._num_labels(),
        )
        loss = sum(p["loss_sum"] for p in parts) / max(sum(p["count"] for p in parts), 1)
        return {"eval_loss": loss, **{f"eval_{k}": v for k, v in metrics.items()}}


_TASKS: dict[str, type[Task]] = {"masked-lm": MaskedLMTask, "causal-lm": CausalLMTask, "classify": ClassifyTask}


def make_data_task(name: str, bundle: ModelBundle, config: TrainConfig) -> Task:
    """One of the tasks that train the model itself; a readout's task borrows its data set and collator."""
    return _TASKS[name](bundle, config)


# Tasks that build on the ones above live in their own modules, imported when first asked for.
_LATER_TASKS: dict[str, tuple[str, str]] = {
    "tuned-lens": ("workbench.training.lens_task", "TunedLensTask"),
    "next-sentence": ("workbench.training.pair_task", "NextSentenceTask"),
    "sentence-order": ("workbench.training.pair_task", "SentenceOrderTask"),
    "replaced-token": ("workbench.training.electra_task", "ReplacedTokenTask"),
    "distill": ("workbench.training.distill_task", "DistillTask"),
}


def make_task(name: str, bundle: ModelBundle, config: TrainConfig, *, teacher: ModelBundle | None = None) -> Task:
    """The task called ``name`` for ``bundle``; ``teacher`` is the model a ``"distill"`` task learns from.

    Raises ``ConfigError`` for an unknown name, or a teacher given to another task or missing for ``"distill"``;
    ``TrainingError`` for a model the task does not fit."""
    if name not in _TASKS and name not in _LATER_TASKS:
        raise ConfigError(f"Unknown task {name!r}; use one of: {', '.join(TASKS)}.")
    if name == "distill":
        if teacher is None:
            raise ConfigError(
                "The 'distill' task learns from a teacher; pass teacher=<the trained ModelBundle> "
                "(Trainer(student, 'distill', data, teacher=teacher))."
            )
    elif teacher is not None:
        raise ConfigError(f"teacher= is for the 'distill' task only; the {name!r} task trains without one.")
    if name in _TASKS:
        return _TASKS[name](bundle, config)
    import importlib

    module, class_name = _LATER_TASKS[name]
    task_class = getattr(importlib.import_module(module), class_name)
    if name == "distill":
        return task_class(bundle, config, teacher=teacher)  # type: ignore[no-any-return]
    return task_class(bundle, config)  # type: ignore[no-any-return]
