"""``TrainConfig``: every knob of a run, with defaults that run on a laptop CPU."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from workbench.errors import ConfigError

__all__ = ["TASKS", "AttentionChoice", "Precision", "ResolvedPrecision", "Schedule", "TaskName", "TrainConfig"]

TaskName = Literal[
    "masked-lm",
    "causal-lm",
    "classify",
    "tuned-lens",
    "next-sentence",
    "sentence-order",
    "replaced-token",
    "distill",
]
Precision = Literal["auto", "bf16", "fp16", "fp32"]
ResolvedPrecision = Literal["bf16", "fp16", "fp32"]  # what "auto" becomes on a device
Schedule = Literal["linear", "cosine", "constant"]
AttentionChoice = Literal["auto", "sdpa", "eager"]

TASKS: tuple[TaskName, ...] = get_args(TaskName)
_PRECISIONS: tuple[Precision, ...] = get_args(Precision)
_SCHEDULES: tuple[Schedule, ...] = get_args(Schedule)
_ATTENTION: tuple[AttentionChoice, ...] = get_args(AttentionChoice)


@dataclass(frozen=True)
class TrainConfig:
    """A run's settings. The same names are the CLI flags (``--learning-rate 3e-4``).

    ``max_steps`` wins over ``epochs`` when set. ``precision="auto"`` uses bf16 autocast where
    the device has it (bf16 GPUs; CPUs with AVX512-BF16 or AMX), fp16 with a scaler on older
    GPUs, fp32 elsewhere; ``"fp32"`` turns mixed precision off.
    """

    output_dir: str | None = None  # checkpoints and metrics.jsonl go here; None keeps nothing on disk
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 32
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    schedule: Schedule = "linear"
    max_grad_norm: float | None = 1.0
    precision: Precision = "auto"
    seed: int = 0
    block_size: int = 128  # language-model tasks: tokens per packed block
    max_length: int = 128  # classification: longest input, in tokens
    mlm_probability: float = 0.15
    sparse_mlm_head: bool = True  # masked-LM: run the output head only where tokens are masked
    lens_positions: int = 16  # tuned-lens: positions per sequence and layer sent through the vocabulary head a step
    generator_layers: int | None = None  # replaced-token: the generator's layers; None: a quarter of the model's
    discriminator_weight: float = 50.0  # replaced-token: lambda, the discriminator loss's weight (50 in ELECTRA)
    temperature: float = 2.0  # distill: both models' logits are divided by it before the KL
    hard_label_weight: float = 0.5  # distill: weight of the true labels' loss beside the teacher's soft labels
    group_by_length: bool = True  # classification: batches of similar length, less padding
    log_every: int = 10
    eval_every: int | None = None  # steps between evaluations; None evaluates at the end only
    eval_batches: int | None = None  # cap on evaluation batches; None uses the whole eval set
    save_every: int | None = None  # steps between checkpoints; None saves at the end (and on stop)
    keep_last: int = 2
    early_stopping_patience: int | None = None
    metric_for_best: str = "eval_loss"
    attention: AttentionChoice = "auto"  # attention kernel while training: "auto", "sdpa" or "eager"
    progress: bool = True  # console progress bar
    device: str | None = None  # None lets Accelerate choose

    def __post_init__(self) -> None:
        positive_ints = (
            "batch_size",
            "gradient_accumulation_steps",
            "block_size",
            "max_length",
            "log_every",
            "keep_last",
            "lens_positions",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
        for name in (
            "max_steps",
            "eval_every",
            "generator_layers",
            "save_every",
            "eval_batches",
            "early_stopping_patience",
        ):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive integer or None, got {value!r}.")
        if not isinstance(self.learning_rate, (int, float)) or not self.learning_rate > 0:
            raise ConfigError(
                f"learning_rate must be above zero, got {self.learning_rate!r}; "
                "try 5e-4 for pretraining or 3e-5 for fine-tuning."
            )
        if not self.epochs > 0:
            raise ConfigError(f"epochs must be above zero, got {self.epochs!r}.")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}.")
        if not 0 < self.mlm_probability < 1:
            raise ConfigError(f"mlm_probability must be between 0 and 1, got {self.mlm_probability!r}.")
        if not isinstance(self.temperature, (int, float)) or not self.temperature > 0:
            raise ConfigError(
                f"temperature must be above zero, got {self.temperature!r}; 1 keeps the teacher's probabilities "
                "as they are, 2 to 4 soften them."
            )
        if not isinstance(self.hard_label_weight, (int, float)) or self.hard_label_weight < 0:
            raise ConfigError(f"hard_label_weight must not be negative, got {self.hard_label_weight!r}.")
        if not isinstance(self.discriminator_weight, (int, float)) or not self.discriminator_weight > 0:
            raise ConfigError(
                f"discriminator_weight must be above zero, got {self.discriminator_weight!r}; ELECTRA uses 50."
            )
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must not be negative, got {self.weight_decay!r}.")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ConfigError(f"max_grad_norm must be above zero or None, got {self.max_grad_norm!r}.")
        if self.precision not in _PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(_PRECISIONS)}, got {self.precision!r}.")
        if self.attention not in _ATTENTION:
            raise ConfigError(f"attention must be 'auto', 'sdpa' or 'eager', got {self.attention!r}.")
        if self.schedule not in _SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(_SCHEDULES)}, got {self.schedule!r}.")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict; an unknown field answers with the fields there are."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(
                f"Unknown config field(s) {', '.join(unknown)}; the fields are: {', '.join(sorted(names))}."
            )
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (checked like the constructor)."""
        return TrainConfig.from_dict({**dataclasses.asdict(self), **changes})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
