"""The ``"tuned-lens"`` task: train a ``TunedLens`` on a frozen language model with the one loop.

The loss is the KL divergence from the model's final distribution to each translated layer's distribution
(read through the model's own final norm and head), averaged over layers and positions: every position of
a causal LM, the masked positions of a masked LM. On a CPU the vocabulary head dominates the cost (SmolLM2:
30 layers × 49,152 tokens at every position), so each step sends ``lens_positions`` randomly chosen
positions per sequence and per layer through it — every layer each step, a fresh draw each time. The mean
over the draw is an unbiased estimate of the mean over every position, so what is minimised does not
change; only its noise does. The head runs in chunks of cells, so the vocabulary is never held for more
than ``_CHUNK`` cells at once, in training and in evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from workbench.errors import TrainingError
from workbench.models.heads import final_norm_and_head, own_head
from workbench.training.config import TaskName, TrainConfig
from workbench.training.metrics import parameter_split, perplexity
from workbench.training.tasks import Task, make_data_task
from workbench.training.tuned_lens import LENS_FILE, TunedLens, load_tuned_lens

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["CellChunk", "TunedLensTask", "lens_cells_kl"]

_CHUNK = 256  # cells through the vocabulary head at once: 256 × 49,152 float32 logits is 50 MB
Head = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class CellChunk:
    """One chunk of cells read through the head: which cells, their inputs, logits and log-probabilities
    ``(chunk, vocab)``, the target probabilities they are compared with, and each cell's KL ``(chunk,)``."""

    cells: slice
    inputs: torch.Tensor
    logits: torch.Tensor
    log_q: torch.Tensor
    target: torch.Tensor
    kl: torch.Tensor


def lens_cells_kl(
    states: torch.Tensor, head: Head, target_log_probs: torch.Tensor, owner: torch.Tensor
) -> Iterator[CellChunk]:
    """KL(target || head(state)) for each cell, ``_CHUNK`` cells at a time.

    ``states`` is ``(cells, hidden)``; ``target_log_probs`` ``(positions, vocab)``; ``owner[i]`` is the
    position whose target cell ``i`` is compared with. A chunk's graph from its inputs to its logits is
    built when ``states`` requires grad and grad mode is on, so a caller can take gradients chunk by chunk.
    """
    probs = target_log_probs.exp()  # (positions, vocab)
    negentropy = (probs * target_log_probs).sum(-1)  # (positions,): the KL's part that needs no cell
    for start in range(0, states.shape[0], _CHUNK):
        cells = slice(start, start + _CHUNK)
        inputs, mine = states[cells], owner[cells]
        logits = head(inputs)
        with torch.no_grad():
            log_q = torch.log_softmax(logits.detach().float(), dim=-1)  # (chunk, vocab)
            target = probs[mine]  # (chunk, vocab)
            kl = negentropy[mine] - (target * log_q).sum(-1)  # (chunk,)
        yield CellChunk(cells, inputs, logits, log_q, target, kl)


class _ChunkedKL(torch.autograd.Function):
    """The weighted sum of cell KLs, whose gradient with respect to the states is taken chunk by chunk in the
    forward pass: the vocabulary-sized tensors of one chunk are freed before the next is made. The gradient
    of KL(p || softmax(z)) with respect to the logits z is softmax(z) - p, so only the head's own backward
    runs through autograd."""

    @staticmethod
    def forward(  # noqa: PLR0917 - autograd passes a Function's inputs by position
        ctx: Any,
        states: torch.Tensor,
        weights: torch.Tensor,
        head: Head,
        target_log_probs: torch.Tensor,
        owner: torch.Tensor,
    ) -> torch.Tensor:
        grads = torch.zeros_like(states) if ctx.needs_input_grad[0] else None
        total = torch.zeros((), dtype=torch.float64, device=states.device)
        detached = states.detach().requires_grad_(grads is not None)
        with torch.enable_grad():
            for chunk in lens_cells_kl(detached, head, target_log_probs, owner):
                weight = weights[chunk.cells]
                total += (chunk.kl * weight).sum().double()
                if grads is not None:
                    grad_logits = (chunk.log_q.exp() - chunk.target) * weight[:, None]  # (chunk, vocab)
                    (grads[chunk.cells],) = torch.autograd.grad(
                        chunk.logits, chunk.inputs, grad_outputs=grad_logits.to(chunk.logits.dtype)
                    )
        ctx.save_for_backward(grads if grads is not None else torch.empty(0))
        return total.float()

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, ...]:
        (grads,) = ctx.saved_tensors
        return grads * grad_output, None, None, None, None


class TunedLensTask(Task):
    """Train ``self.lens`` (a ``TunedLens``) on a frozen causal or masked language model."""

    name: ClassVar[TaskName] = "tuned-lens"
    kinds = ("causal-lm", "masked-lm")
    advice = "a tuned lens reads a language model's layers: load one with kind='causal-lm' or kind='masked-lm'."
    weights_file = LENS_FILE
    several_processes = False

    def __init__(self, bundle: ModelBundle, config: TrainConfig) -> None:
        super().__init__(bundle, config)
        self.data_task = make_data_task("masked-lm" if bundle.kind == "masked-lm" else "causal-lm", bundle, config)
        self.lens = TunedLens.for_model(bundle)
        norm, head = final_norm_and_head(bundle.model)
        self._head: Head = head if norm is None else lambda h: head(norm(h))
        self._own_head = own_head(bundle.model)

    # ------------------------------------------------------------- the loop's hooks

    def dataset(self, data: Any, role: str) -> Any:
        return self.data_task.dataset(data, role)

    def collator(self) -> Callable[[list[Any]], dict[str, Any]]:
        return self.data_task.collator()

    def trainable(self) -> torch.nn.Module:
        return self.lens

    def adopt_trainable(self, module: torch.nn.Module) -> None:
        if not isinstance(module, TunedLens):
            raise TrainingError(f"The tuned-lens task trains a TunedLens, not a {type(module).__name__}.")
        self.lens = module

    def write_weights(self, folder: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        self.lens.save(folder / LENS_FILE)

    def load_weights(self, folder: Path) -> None:
        saved = load_tuned_lens(folder / LENS_FILE, self.bundle)
        with torch.no_grad():
            self.lens.weight.copy_(saved.weight)
            self.lens.bias.copy_(saved.bias)

    def on_step(self, step: int) -> None:
        self.lens.trained_steps = step

    def flops_per_token(self, seq_len: int, processes: int = 1) -> float:
        split = parameter_split(self.bundle.model)
        readable = seq_len * (self.config.mlm_probability if self.bundle.kind == "masked-lm" else 1.0)
        share = min(readable, self.config.lens_positions) / seq_len  # the positions read, per token
        forward = 2.0 * split.body + 4.0 * split.layers * split.hidden * seq_len  # the frozen model: no backward
        # The model's own head at each position read; at every layer there, the translator forward and
        # backward and the head forward and its backward to the input.
        return forward + share * (2.0 * split.head + self.lens.rows * (6.0 * self.lens.hidden**2 + 4.0 * split.head))

    # ------------------------------------------------------------- loss and evaluation

    def loss(self, model: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        chosen, target, weights = self._cells(batch, None)
        translated = model(chosen).reshape(-1, chosen.shape[-1])  # (rows * cells, hidden)
        owner = torch.arange(target.shape[0], device=target.device).repeat(chosen.shape[0])  # (rows * cells,)
        loss: torch.Tensor = _ChunkedKL.apply(  # type: ignore[no-untyped-call]
            translated, weights.repeat(chosen.shape[0]), self._head, target, owner
        )
        return loss, int(batch["input_ids"].numel())

    def evaluate_parts(self, model: Any, batches: list[dict[str, Any]], autocast: Any) -> dict[str, Any]:
        rows = self.lens.rows
        sums = {"tuned": torch.zeros(rows, dtype=torch.float64), "logit": torch.zeros(rows, dtype=torch.float64)}
        count = 0.0
        generator = torch.Generator().manual_seed(self.config.seed)  # the same cells at every evaluation
        with torch.no_grad(), autocast():
            for batch in batches:
                chosen, target, weights = self._cells(batch, generator)
                owner = torch.arange(target.shape[0], device=target.device).repeat(rows)
                for name, states in (("tuned", model(chosen)), ("logit", chosen)):
                    cells = lens_cells_kl(states.reshape(-1, states.shape[-1]), self._head, target, owner)
                    kl = torch.cat([chunk.kl for chunk in cells]).view(rows, -1)  # (rows, cells)
                    sums[name] += (kl * (weights > 0)).sum(-1).double().cpu()
                count += float((weights > 0).sum())
        return {"tuned": sums["tuned"].tolist(), "logit": sums["logit"].tolist(), "count": count}

    def combine(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        count = max(sum(p["count"] for p in parts), 1.0)
        tuned = torch.tensor([p["tuned"] for p in parts]).sum(0) / count  # (rows,) mean KL per layer
        logit = torch.tensor([p["logit"] for p in parts]).sum(0) / count
        mean = float(tuned.mean())
        return {
            "eval_loss": mean,
            "eval_perplexity": perplexity(mean),  # exp(KL): how many times likelier the model's own output is
            "eval_logit_lens_kl": float(logit.mean()),
            "eval_layers_better": float((tuned < logit).double().mean()),
        }

    # ------------------------------------------------------------- reading the frozen model

    def _cells(
        self, batch: dict[str, Any], generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The cells a step reads: up to ``lens_positions`` random positions of each sequence where the lens is
        read (every position of a causal LM, the masked ones of a masked LM), the same for every layer.

        Returns every layer's hidden state there, before the final norm ``(rows, cells, hidden)``; the model's own
        log-probabilities there ``(cells, vocab)``; and each cell's weight ``(cells,)``: 1 / (cells read) / rows,
        0 for a filler where a sequence had fewer positions to read, so the loss is the mean over layers of each
        layer's mean KL. Each translator learns from its own layer's cells only, so sharing the positions between
        layers costs nothing in what each sees, and the model's own head runs at the chosen positions alone.
        """
        lm: Any = self.bundle.model
        lm.eval()  # the model is only read: no dropout while the lens learns it
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        if self.bundle.kind == "masked-lm":
            valid = batch["labels"] != -100  # (batch, seq)
        else:
            valid = batch.get("attention_mask", torch.ones_like(batch["input_ids"])).bool()
        sequences, seq = valid.shape
        scores = torch.rand((sequences, seq), generator=generator).to(valid.device).masked_fill(~valid, -1.0)
        top = scores.topk(min(self.config.lens_positions, seq), dim=-1)  # (batch, k)
        flat = (top.indices + torch.arange(sequences, device=valid.device)[:, None] * seq).reshape(-1)  # (cells,)
        kept = (top.values >= 0).reshape(-1).float()  # (cells,)
        weights = kept / kept.sum().clamp(min=1) / self.lens.rows
        with torch.no_grad():
            out = lm.base_model(**inputs, output_hidden_states=True)
            width = out.last_hidden_state.shape[-1]
            # Every layer's state but the last (the output's own) at the chosen positions.
            chosen = torch.stack([h.reshape(-1, width)[flat] for h in out.hidden_states[:-1]])  # (rows, cells, hidden)
            final = out.last_hidden_state.reshape(-1, width)[flat]  # (cells, hidden)
            logits = torch.cat([self._own_head(final[s : s + _CHUNK]).float() for s in range(0, len(flat), _CHUNK)])
            target = torch.log_softmax(logits, dim=-1)  # (cells, vocab)
        return chosen, target, weights
