"""The ``"distill"`` task: a student learns a frozen teacher's output distribution (Hinton et al. 2015, DistilBERT).

The loss, for a classifier, over the batch's examples::

    soft = T² · mean_examples KL(softmax(t / T) || softmax(s / T))
    hard = mean_examples CE(s, label)
    loss = soft + hard_label_weight · hard

where ``t`` and ``s`` are the teacher's and the student's logits and ``T`` is ``config.temperature``. Dividing
the logits by T divides the soft term's gradients by T², so the T² keeps their size as T changes (Hinton et al.,
section 2). For a masked LM the same sums run over the masked positions, where the teacher reads the same masked
input the student does, and ``hard`` is the masked-LM loss. The teacher stays frozen: in eval mode, under no_grad,
never handed to the optimizer; it moves to the student's device at its first batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from workbench.errors import ConfigError, TrainingError
from workbench.models.heads import masked_lm_parts
from workbench.training.config import TaskName, TrainConfig
from workbench.training.metrics import classification_metrics, flops_per_token, perplexity
from workbench.training.tasks import Task, make_data_task

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["DistillTask", "check_teacher", "masked_logits", "soft_label_kl"]


def check_teacher(student: ModelBundle, teacher: object) -> None:
    """Raise when ``teacher`` cannot teach ``student``: each logit must mean the same thing in both models.

    Raises ``TypeError`` for a teacher that is not a ``ModelBundle``; ``ConfigError`` for the student itself;
    ``TrainingError`` for a teacher of another kind, another tokenizer (vocabulary) or other labels.
    """
    from workbench.models import ModelBundle

    if not isinstance(teacher, ModelBundle):
        raise TypeError(f"teacher must be a ModelBundle (from load_model), got {type(teacher).__name__}.")
    if teacher is student or teacher.model is student.model:
        raise ConfigError(
            "The teacher is the student itself, so training would move the teacher too; distil into a copy, "
            "such as every_other_layer(teacher) from workbench.compress.distill."
        )
    if teacher.kind != student.kind:
        raise TrainingError(
            f"The student {student.name} is a {student.kind} but the teacher {teacher.name} is a {teacher.kind}; "
            "load both as the same kind (both kind='classifier', or both kind='masked-lm')."
        )
    if not student.shares_vocabulary(teacher) or _output_width(student) != _output_width(teacher):
        raise TrainingError(
            f"The student {student.name} and the teacher {teacher.name} have different tokenizers "
            f"({len(student.tokenizer)} and {len(teacher.tokenizer)} tokens, or other ids for them), so their inputs "
            "and outputs do not match; build the student with the teacher's tokenizer: every_other_layer(teacher), "
            "or load_model('tiny-bert', kind=..., tokenizer=teacher.tokenizer, ...)."
        )
    if student.label_names != teacher.label_names:
        raise TrainingError(
            f"The student's labels ({', '.join(student.label_names or [])}) differ from the teacher's "
            f"({', '.join(teacher.label_names or [])}), so their logits mean different things; load the student "
            "with label_names=teacher.label_names."
        )


def _output_width(bundle: ModelBundle) -> int:
    # A masked LM's logits are as wide as its embedding table, which may be padded beyond the tokenizer.
    return int(getattr(bundle.model.config, "vocab_size", 0) or 0) if bundle.kind == "masked-lm" else 0


def soft_label_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Sum over rows of KL(softmax(teacher / T) || softmax(student / T)); both ``(rows, classes)``. In float32."""
    log_student = F.log_softmax(student_logits.float() / temperature, dim=-1)  # (rows, classes)
    log_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)  # (rows, classes)
    return F.kl_div(log_student, log_teacher, log_target=True, reduction="sum")


def masked_logits(model: Any, inputs: dict[str, torch.Tensor], masked: torch.Tensor, *, sparse: bool) -> torch.Tensor:
    """A masked LM's logits at the ``masked`` positions ``(batch, seq)``: ``(n_masked, vocab)``.

    With ``sparse`` (and a head it knows) the output head runs at those positions alone, as ``MaskedLMTask``'s does.
    """
    parts = masked_lm_parts(model) if sparse else None
    if parts is None:
        logits: torch.Tensor = model(**inputs).logits[masked]  # (n_masked, vocab)
        return logits
    base, head = parts
    hidden = base(**inputs).last_hidden_state  # (batch, seq, hidden)
    sparse_logits: torch.Tensor = head(hidden[masked])  # (n_masked, vocab)
    return sparse_logits


@dataclass
class _Outputs:
    """Both models' logits where the loss is taken ``(rows, classes)``, and the true class of each row ``(rows,)``."""

    student: torch.Tensor
    teacher: torch.Tensor
    targets: torch.Tensor


class DistillTask(Task):
    """Train ``bundle`` (the student) to match ``teacher``'s soft labels and the true labels (see the module)."""

    name: ClassVar[TaskName] = "distill"
    kinds = ("classifier", "masked-lm")
    advice = (
        "distillation trains a classifier (kind='classifier') or a masked LM (kind='masked-lm') from a teacher of "
        "the same kind; causal LMs and bare encoders are not distilled here."
    )

    def __init__(self, bundle: ModelBundle, config: TrainConfig, *, teacher: ModelBundle) -> None:
        self.is_classifier = bundle.kind == "classifier"
        self.length_field = "max_length" if self.is_classifier else "block_size"
        super().__init__(bundle, config)
        check_teacher(bundle, teacher)
        length = getattr(config, self.length_field)
        if length > teacher.max_positions:
            raise ConfigError(
                f"{self.length_field}={length} is longer than the teacher {teacher.name} allows "
                f"({teacher.max_positions} positions); set {self.length_field}={teacher.max_positions} or less."
            )
        self.teacher = teacher
        self.data_task = make_data_task("classify" if self.is_classifier else "masked-lm", bundle, config)
        if hasattr(teacher.model, "eval"):
            teacher.model.eval()
        # A saved student names its teacher (every_other_layer has already noted the layers it kept).
        bundle.extra["distillation"] = {**(bundle.extra.get("distillation") or {}), "teacher": teacher.name}

    # ------------------------------------------------------------- data: the classify or masked-LM task's

    def dataset(self, data: Any, role: str) -> Any:
        return self.data_task.dataset(data, role)

    def collator(self) -> Callable[[list[Any]], dict[str, Any]]:
        return self.data_task.collator()

    def order(self, dataset: Any, epoch: int, batch_size: int | None = None) -> list[int]:
        return self.data_task.order(dataset, epoch, batch_size)

    # ------------------------------------------------------------- loss

    def _outputs(self, model: Any, batch: dict[str, Any]) -> _Outputs:
        labels = batch["labels"]
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        teacher: Any = self.teacher.model
        if self.teacher.device != labels.device:
            self.teacher.to(labels.device)
        if teacher.training:  # someone else's train() reached it: a teacher never drops out
            teacher.eval()
        if self.is_classifier:
            student_logits = model(**inputs).logits  # (batch, labels)
            with torch.no_grad():
                teacher_logits = teacher(**inputs).logits  # (batch, labels)
            return _Outputs(student_logits, teacher_logits, labels)
        masked = labels != -100  # (batch, seq)
        # Wrapped for several processes, the student's whole forward must run (gradients are shared through it).
        sparse = self.config.sparse_mlm_head and model is self.bundle.model
        student_logits = masked_logits(model, inputs, masked, sparse=sparse)  # (n_masked, vocab)
        with torch.no_grad():
            teacher_logits = masked_logits(teacher, inputs, masked, sparse=True)  # (n_masked, vocab)
        return _Outputs(student_logits, teacher_logits, labels[masked])

    def loss(self, model: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        out = self._outputs(model, batch)
        rows = max(int(out.targets.shape[0]), 1)  # a masked-LM batch with nothing masked gives 0, not NaN
        temperature = float(self.config.temperature)
        soft = temperature**2 * soft_label_kl(out.student, out.teacher, temperature) / rows
        hard = F.cross_entropy(out.student.float(), out.targets, reduction="sum") / rows
        self.note_part("soft_loss", soft)
        self.note_part("hard_loss", hard)
        tokens = batch["attention_mask"].sum() if self.is_classifier else batch["input_ids"].numel()
        return soft + self.config.hard_label_weight * hard, int(tokens)

    def head_share(self, processes: int) -> float:
        if self.is_classifier:
            return 1.0 / self.config.max_length  # the pooler and classifier run once per sequence
        sparse = self.config.sparse_mlm_head and processes == 1 and masked_lm_parts(self.bundle.model) is not None
        return self.config.mlm_probability if sparse else 1.0

    def flops_per_token(self, seq_len: int, processes: int = 1) -> float:
        """The student's forward and backward, and the teacher's forward (a third of its forward and backward)."""
        teacher_share = (
            1.0 / self.config.max_length
            if self.is_classifier
            else self.config.mlm_probability
            if masked_lm_parts(self.teacher.model) is not None
            else 1.0
        )
        student = flops_per_token(self.bundle.model, seq_len, self.head_share(processes))
        return student + flops_per_token(self.teacher.model, seq_len, teacher_share) / 3.0

    # ------------------------------------------------------------- evaluation

    def evaluate_parts(self, model: Any, batches: list[dict[str, Any]], autocast: Any) -> dict[str, Any]:
        temperature = float(self.config.temperature)
        sums = {"soft": 0.0, "hard": 0.0, "kl": 0.0, "agree": 0.0}
        count, predictions, labels = 0, [], []
        with torch.no_grad(), autocast():
            for batch in batches:
                out = self._outputs(model, batch)
                student_choice = out.student.argmax(-1)  # (rows,)
                sums["soft"] += float(soft_label_kl(out.student, out.teacher, temperature))
                sums["kl"] += float(soft_label_kl(out.student, out.teacher, 1.0))
                sums["hard"] += float(F.cross_entropy(out.student.float(), out.targets, reduction="sum"))
                sums["agree"] += float((student_choice == out.teacher.argmax(-1)).sum())
                count += int(out.targets.shape[0])
                if self.is_classifier:
                    predictions += student_choice.cpu().tolist()
                    labels += out.targets.cpu().tolist()
        return {**sums, "count": count, "predictions": predictions, "labels": labels}

    def combine(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        """``eval_loss`` (the training loss's form), its ``eval_soft_loss`` and ``eval_hard_loss``; ``eval_kl``:
        KL(teacher || student) at temperature 1, the plain distributions; ``eval_agreement``: the share of rows
        (examples, or masked positions) where both models' top class is the same. A classifier adds
        ``eval_accuracy`` and the other classification metrics; a masked LM the student's ``eval_perplexity``."""
        count = max(sum(p["count"] for p in parts), 1)
        mean = {key: sum(p[key] for p in parts) / count for key in ("soft", "hard", "kl", "agree")}
        soft = float(self.config.temperature) ** 2 * mean["soft"]
        metrics: dict[str, Any] = {
            "eval_loss": soft + self.config.hard_label_weight * mean["hard"],
            "eval_soft_loss": soft,
            "eval_hard_loss": mean["hard"],
            "eval_kl": mean["kl"],
            "eval_agreement": mean["agree"],
        }
        if not self.is_classifier:
            return {**metrics, "eval_perplexity": perplexity(mean["hard"])}
        predictions = np.asarray([y for p in parts for y in p["predictions"]], dtype=np.int64)
        labels = np.asarray([y for p in parts for y in p["labels"]], dtype=np.int64)
        scores = classification_metrics(predictions, labels, int(self.bundle.model.config.num_labels or 0))
        return {**metrics, **{f"eval_{k}": v for k, v in scores.items()}}
