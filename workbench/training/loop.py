"""The one training loop, for masked-LM and causal-LM pretraining and for fine-tuning.

Example::

    from workbench.models import load_model
    from workbench.training import Trainer, TrainConfig
    bundle = load_model("tiny-bert", corpus="shakespeare")
    trainer = Trainer(bundle, "masked-lm", "shakespeare", config=TrainConfig(max_steps=200, output_dir="runs/a"))
    history = trainer.fit()          # blocks; or job = trainer.start() for a background thread
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from workbench.errors import CheckpointError, DataError, TrainingError
from workbench.training import checkpoint as ckpt
from workbench.training.config import TrainConfig
from workbench.training.distributed import Collective
from workbench.training.events import Callback, CallbackList, Control, TrainState
from workbench.training.metrics import flops_per_token, peak_flops
from workbench.training.precision import make_accelerator
from workbench.training.tasks import make_task

__all__ = ["Trainer", "TrainingHistory"]

_SMOOTHING = 0.9  # weight of the past in the smoothed loss


class TrainingHistory:
    """What a run logged: a record per log step (``train``) and per evaluation (``eval``)."""

    def __init__(self, records: Sequence[dict] = ()):
        self.records: list[dict] = list(records)

    @property
    def train(self) -> list[dict]:
        return [r for r in self.records if r["kind"] == "train"]

    @property
    def eval(self) -> list[dict]:
        return [r for r in self.records if r["kind"] == "eval"]

    @property
    def probes(self) -> list[dict]:
        """Records of a ``ProbeRecorder``: what the probe sentences predicted at each step."""
        return [r for r in self.records if r["kind"] == "probe"]

    def losses(self) -> list[float]:
        return [r["loss"] for r in self.train]

    def to_dict(self) -> dict:
        return {"records": list(self.records)}

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        last = self.train[-1]["loss"] if self.train else math.nan
        return f"TrainingHistory({len(self.train)} train logs, {len(self.eval)} evaluations, last loss {last:.4f})"


class Trainer:
    """Train ``bundle`` on ``task`` ("masked-lm", "causal-lm" or "classify").

    ``train_data`` is a corpus (a registry name, a list of texts, a ``Corpus``) for the
    language-model tasks, labelled data for ``classify``, or a ready torch ``Dataset``.
    Everything is checked before a step runs; a mistake raises a ``WorkbenchError`` sentence.
    """

    def __init__(
        self,
        bundle: Any,
        task: str,
        train_data: Any,
        eval_data: Any = None,
        config: TrainConfig | None = None,
        callbacks: Sequence[Callback] = (),
    ):
        self.config = config or TrainConfig()
        if not isinstance(self.config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(self.config).__name__}.")
        self.bundle = bundle
        self.task = make_task(task, bundle, self.config)
        self.train_dataset = self.task.dataset(train_data, "training")
        self.eval_dataset = self.task.dataset(eval_data, "evaluation") if eval_data is not None else None
        self._check_sizes()
        self.collate = self.task.collator()
        self.state = TrainState()
        self.control = Control()
        self.history = TrainingHistory()
        self._resume_from: Path | None = None
        self._resume_state: dict | None = None
        self._resumed = threading.Event()
        self._resumed.set()
        self._inject_nan_at: int | None = None  # tests: make the loss NaN at this step
        self._remote: Any = None  # SharedFlags of a launching kernel, in a run of several processes
        self._setup_optimization()

        from workbench.training.callbacks import Checkpointer, ConsolePrinter, EarlyStopping, MetricsWriter

        # Under several processes only the main one prints and writes; every one keeps the same course.
        built_in: list[Callback] = []
        if self.config.progress and self.is_main:
            built_in.append(ConsolePrinter())
        if self.config.output_dir:
            built_in += [MetricsWriter()] if self.is_main else []
            built_in.append(Checkpointer())
        if self.config.early_stopping_patience:
            built_in.append(EarlyStopping(self.config.metric_for_best, self.config.early_stopping_patience))
        self.callbacks = CallbackList(built_in + list(callbacks))

    # ----------------------------------------------------------------- set-up

    def _check_sizes(self, processes: int = 1) -> None:
        n = len(self.train_dataset)
        if n == 0:
            raise DataError("The training data is empty; give at least one batch of examples.")
        if self.config.batch_size * processes > n:
            per = f" per process x {processes} processes" if processes > 1 else ""
            raise DataError(
                f"batch_size {self.config.batch_size}{per} is larger than the training data ({n} examples); "
                f"use batch_size={max(1, n // processes)} or less, or more data."
            )
        if self.eval_dataset is not None and len(self.eval_dataset) == 0:
            raise DataError("The evaluation data is empty; pass eval_data=None to skip evaluation.")

    def _setup_optimization(self) -> None:
        cfg = self.config
        self.accelerator, self.precision = make_accelerator(cfg.precision, cfg.device)
        self.collective = Collective(self.accelerator)
        self.world, self.rank = self.collective.world, self.collective.rank
        self.is_main = self.accelerator.is_main_process
        self._check_sizes(self.world)
        # Each optimizer step takes one global batch: batch_size examples from every process.
        self.global_batch = cfg.batch_size * self.world
        self.micro_batches_per_epoch = math.ceil(len(self.train_dataset) / self.global_batch)
        steps_per_epoch = max(1, self.micro_batches_per_epoch // cfg.gradient_accumulation_steps)
        self.max_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
        model = self.bundle.model
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            # No weight decay on biases and norms: it only shrinks what should stay free.
            (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        torch.manual_seed(cfg.seed)
        optimizer = torch.optim.AdamW(groups, lr=cfg.learning_rate)
        warmup = int(cfg.warmup_ratio * self.max_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(cfg.schedule, warmup, self.max_steps))
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        _drop_autocast_forward(self.model)
        self.scheduler = scheduler
        self.bundle.model = self.accelerator.unwrap_model(self.model)  # never the DistributedDataParallel shell
        self.device = self.accelerator.device
        device = str(self.device) if self.world == 1 else f"{self.device.type} x {self.world} processes"
        self.state = TrainState(max_steps=self.max_steps, precision=self.precision, device=device)
        seq = cfg.block_size if self.task.name != "classify" else cfg.max_length
        self._flops_per_token = flops_per_token(model.config, self.bundle.num_parameters, seq)
        self._peak = None  # measured lazily: a CPU peak costs a few matmuls

    # ---------------------------------------------------------------- public

    def fit(self) -> TrainingHistory:
        """Train in this thread until done, stopped or interrupted; return the history.

        A KeyboardInterrupt stops the run cleanly: a checkpoint is written first.
        """
        self.control.should_stop = False
        self._run()
        return self.history

    def start(self) -> Any:
        """Run the same loop in a background thread; return its ``TrainingJob``."""
        from workbench.training.job import TrainingJob

        return TrainingJob(self).start()

    def resume(self, path: str | Path | None = None) -> Trainer:
        """Continue from a checkpoint (default: the latest under ``output_dir``); the next fit() picks up there."""
        if path is None:
            if not self.config.output_dir:
                raise CheckpointError("No checkpoint given and no output_dir to look in; pass the checkpoint folder.")
            path = ckpt.latest_checkpoint(Path(self.config.output_dir) / "checkpoints")
            if path is None:
                raise CheckpointError(f"No complete checkpoint under {self.config.output_dir}/checkpoints.")
        path = Path(path)
        saved = ckpt.read_checkpoint(
            path,
            model=self.bundle.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            accelerator=self.accelerator,
        )
        self._resume_state = saved
        st = saved["state"]
        for key in (
            "step",
            "epoch",
            "tokens_seen",
            "train_loss",
            "smoothed_loss",
            "learning_rate",
            "best_metric",
            "best_checkpoint",
            "eval_metrics",
            "elapsed_seconds",
        ):
            if key in st:
                setattr(self.state, key, st[key])
        self.state.last_checkpoint = str(path)
        self.history = TrainingHistory(saved.get("history", {}).get("records", []))
        return self

    def pause(self) -> None:
        self.control.should_pause = True

    def resume_running(self) -> None:
        self.control.should_pause = False
        self._resumed.set()

    def stop(self) -> None:
        self.control.should_stop = True
        self._resumed.set()

    def evaluate(self) -> dict:
        """Evaluate on eval_data now; return the metrics (an empty dict without eval_data).

        Under several processes each evaluates its share of the batches and the sums are
        combined, so every process gets the metrics of the whole evaluation set.
        """
        if self.eval_dataset is None:
            return {}
        batches = self._eval_batches()
        self.model.eval()
        try:
            parts = self.task.evaluate_parts(self.model, batches, self.accelerator.autocast)
        finally:
            self.model.train()
        return self.task.combine(self.collective.gather(parts))

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint now (needs output_dir); return its folder.

        Under several processes every process must call it (the loop does): the main one
        writes the model and the run's state; Accelerate's ``save_state`` writes the
        optimizer and each process's random state.
        """
        if not self.config.output_dir:
            return None
        root = Path(self.config.output_dir) / "checkpoints"
        trainer_state = {
            "state": self.state.to_dict(),
            "history": self.history.to_dict(),
            "config": self.config.to_dict(),
            "task": self.task.name,
            "processes": self.world,
        }
        if self.world == 1:
            path = ckpt.write_checkpoint(
                root,
                self.state.step,
                bundle=self.bundle,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                trainer_state=trainer_state,
            )
        else:
            path = ckpt.write_shared_checkpoint(
                root,
                self.state.step,
                bundle=self.bundle,
                model=self.model,
                accelerator=self.accelerator,
                scheduler=self.scheduler,
                trainer_state=trainer_state,
                collective=self.collective,
            )
        self.state.last_checkpoint = str(path)
        keep = {self.state.best_checkpoint} if self.state.best_checkpoint else set()
        if self.is_main:
            ckpt.prune_checkpoints(root, self.config.keep_last, keep)
        self.callbacks.fire("on_save", self, self.state, self.control, str(path))
        return path

    # ------------------------------------------------------------------ loop

    def _micro_batches(self, start: int) -> Iterator[dict]:
        """This process's micro-batches from global index ``start`` on; the order depends only on seed and epoch.

        A global batch holds ``batch_size`` examples per process; process r takes the r-th
        share. Under several processes an epoch's last global batch is filled from its start,
        so no process is ever handed an empty batch.
        """
        index = start
        bs, size = self.config.batch_size, self.global_batch
        share = slice(self.rank * bs, (self.rank + 1) * bs)
        while True:
            epoch, position = divmod(index, self.micro_batches_per_epoch)
            order = self.task.order(self.train_dataset, epoch, size)
            if self.world > 1 and len(order) % size:
                order = order + order[: size - len(order) % size]
            for i in range(position, self.micro_batches_per_epoch):
                items = [self.train_dataset[j] for j in order[i * size : (i + 1) * size][share]]
                yield self._to_device(self.collate(items))
            index = (epoch + 1) * self.micro_batches_per_epoch

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device, non_blocking=True) if hasattr(v, "to") else v for k, v in batch.items()}

    def _eval_batches(self) -> list[dict]:
        """Evaluation batches with masks drawn from a fixed seed, so evaluations compare across steps."""
        bs = self.config.batch_size
        n = len(self.eval_dataset)
        count = math.ceil(n / bs)
        if self.config.eval_batches:
            count = min(count, self.config.eval_batches)
        rng = torch.get_rng_state()
        torch.manual_seed(self.config.seed + 12345)
        try:
            # Every process draws the same masks in the same order and keeps its own share of the batches.
            batches = [
                self.collate([self.eval_dataset[j] for j in range(i * bs, min(n, (i + 1) * bs))]) for i in range(count)
            ]
        finally:
            torch.set_rng_state(rng)
        return [self._to_device(b) for b in batches[self.rank :: self.world]]

    def _run(self) -> None:
        cfg, state, control = self.config, self.state, self.control
        if state.step >= self.max_steps:
            raise TrainingError(f"This run already reached its {self.max_steps} steps; raise max_steps to train on.")
        if self._resume_state is None:
            torch.manual_seed(cfg.seed + self.rank)  # each process its own masks and dropout
        accum = cfg.gradient_accumulation_steps
        batches = self._micro_batches(state.step * accum)
        params = [p for p in self.model.parameters() if p.requires_grad]
        on_cpu = self.device.type == "cpu"
        pending: list[torch.Tensor] = []  # step losses not yet read back (GPU: no sync per step)
        first_bad = torch.full((), -1, dtype=torch.long, device=self.device)
        window_tokens, window_start = 0, time.perf_counter()
        run_start = time.perf_counter() - state.elapsed_seconds
        grad_norm = torch.zeros((), device=self.device)
        state.status, state.message = "running", f"running (step {state.step} of {self.max_steps})"
        self.model.train()
        kernel_before = self._set_training_attention()
        sigint_before = self._stop_on_sigint()
        self._shared_save_possible = True
        self.callbacks.fire("on_train_begin", self, state, control)
        try:
            while state.step < self.max_steps:
                if control.should_pause and not control.should_stop:
                    self._wait_while_paused()
                    window_tokens, window_start = 0, time.perf_counter()
                if control.should_stop:
                    break
                step_loss = torch.zeros((), device=self.device)
                for _ in range(accum):
                    batch = next(batches)
                    with self.accelerator.autocast():
                        loss, tokens = self.task.loss(self.model, batch)
                    if self._inject_nan_at is not None and state.step + 1 >= self._inject_nan_at:
                        loss = loss * torch.tensor(float("nan"))
                    self.accelerator.backward(loss / accum)
                    step_loss += loss.detach() / accum
                    window_tokens += tokens
                    if self.world == 1:
                        state.tokens_seen += tokens
                # The loss of the global batch: every process sees the same, so all take the same decisions.
                self.collective.mean_(step_loss)
                finite = torch.isfinite(step_loss)
                if on_cpu and not bool(finite):  # on CPU reading it back costs nothing
                    self._on_nonfinite(state.step + 1)
                    break
                first_bad = torch.where(~finite & (first_bad < 0), state.step + 1, first_bad)
                if cfg.max_grad_norm:
                    grad_norm = self.accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                state.step += 1
                state.epoch = state.step * accum / self.micro_batches_per_epoch
                pending.append(step_loss)
                last = state.step >= self.max_steps
                if state.step % cfg.log_every == 0 or last or control.should_log:
                    bad_step = int(first_bad)
                    if bad_step >= 0:
                        self._on_nonfinite(bad_step)
                        break
                    now = time.perf_counter()
                    if self.world > 1:
                        window_tokens = int(self.collective.total(window_tokens))
                        state.tokens_seen += window_tokens
                    self._log(pending, grad_norm, window_tokens, now - window_start, now - run_start)
                    pending, window_tokens, window_start = [], 0, now
                    control.should_log = False
                if (
                    (cfg.eval_every and state.step % cfg.eval_every == 0)
                    or control.should_evaluate
                    or (last and self.eval_dataset is not None)
                ):
                    self._evaluate_and_fire()
                self.callbacks.fire("on_step_end", self, state, control)
                if self._remote is not None:
                    self._remote.poll(control, self.is_main)
                self.collective.agree(control)  # a no-op in one process
                if control.should_save:
                    control.should_save = False
                    if self.config.output_dir and not (state.last_checkpoint or "").endswith(
                        ckpt.checkpoint_name(state.step)
                    ):
                        self.save_checkpoint()
            else:
                state.status, state.message = "finished", f"finished at step {state.step}"
            if state.status == "running":
                state.status, state.message = "stopped", f"stopped at step {state.step}"
        except KeyboardInterrupt:
            state.status, state.message = "stopped", f"interrupted at step {state.step}"
            # Several processes are interrupted at different points; a save together could wait forever.
            self._shared_save_possible = self.world == 1
        except Exception as error:
            state.status, state.message = "failed", f"failed at step {state.step}: {error}"
            self._shared_save_possible = self.world == 1
            self.callbacks.fire("on_exception", self, state, control, error)
            if _is_out_of_memory(error):
                raise TrainingError(self._out_of_memory_sentence()) from None
            raise
        finally:
            state.elapsed_seconds = time.perf_counter() - run_start
            self.model.eval()  # a trained model is handed back ready to inspect: no dropout
            if kernel_before is not None:
                self.bundle.model.set_attn_implementation(kernel_before)
            if sigint_before is not None:
                signal.signal(signal.SIGINT, sigint_before)
            self._final_save()
            self.callbacks.fire("on_train_end", self, state, control)

    def training_attention(self) -> str | None:
        """The attention kernel this run trains with ("auto" resolved), or None to keep the model's own."""
        choice = self.config.attention
        if choice == "auto":
            # Measured on this project's 2-core AVX512-BF16 CPU (tiny-bert, 32 x 128 tokens, one step):
            # under bf16 autocast, eager attention 351 ms against SDPA 443 ms (the CPU flash kernel's
            # backward dominates); in fp32 SDPA wins (584 against 709 ms); at 512 tokens they tie.
            short = self.config.block_size <= 256 and self.config.max_length <= 256
            choice = "eager" if self.device.type == "cpu" and self.precision == "bf16" and short else None
        return choice

    def _set_training_attention(self) -> str | None:
        """Switch to the training kernel; return the one to restore afterwards (None: nothing changed)."""
        wanted = self.training_attention()
        current = getattr(self.bundle.model.config, "_attn_implementation", None)
        if wanted is None or current == wanted or not hasattr(self.bundle.model, "set_attn_implementation"):
            return None
        try:
            self.bundle.model.set_attn_implementation(wanted)
        except (ValueError, ImportError):  # a model without that kernel keeps its own
            return None
        return current

    def _out_of_memory_sentence(self) -> str:
        cfg, step = self.config, self.state.step
        smaller = max(1, cfg.batch_size // 2)
        saved = (
            f"the run stopped at step {step} and saves a checkpoint there, so trainer.resume() continues"
            if cfg.output_dir and step
            else "nothing was trained yet"
        )
        return (
            f"Out of memory at step {step + 1} with batch_size={cfg.batch_size}: set batch_size={smaller} with "
            f"gradient_accumulation_steps={cfg.gradient_accumulation_steps * 2} (the same batch per update in "
            f"less memory) or a shorter block_size/max_length; {saved}."
        )

    def _stop_on_sigint(self) -> Any:
        """Under several processes (``accelerate launch``), Ctrl-C asks every process to stop at the same step.

        A terminal's Ctrl-C reaches each process at a different point of its step (and the
        launcher's agent sends another); raised there, they could never meet again to save.
        So it only sets Stop: the processes agree on it at the step's end and save together.
        A process that hangs is killed by the launcher's agent after its grace period.
        Returns the handler to restore, or None where nothing was changed.
        """
        if self.world == 1 or threading.current_thread() is not threading.main_thread():
            return None
        before = signal.getsignal(signal.SIGINT)
        if before is not signal.default_int_handler:  # ignored (a notebook's worker) or someone else's
            return None
        control = self.control

        def request_stop(signum: int, frame: Any) -> None:
            control.should_stop = True

        signal.signal(signal.SIGINT, request_stop)
        return before

    def _final_save(self) -> None:
        state = self.state
        if state.status == "nan" or not self.config.output_dir or state.step == 0:
            return
        if not getattr(self, "_shared_save_possible", True):
            state.message += "; no final checkpoint: the processes could not meet to save (the last one is kept)"
            return
        if state.last_checkpoint and state.last_checkpoint.endswith(ckpt.checkpoint_name(state.step)):
            return
        try:
            self.save_checkpoint()
        except CheckpointError as e:
            state.message += f"; the final checkpoint could not be written: {e}"
            raise

    def _on_nonfinite(self, step: int) -> None:
        kept = (
            f"The last good checkpoint is {self.state.last_checkpoint}."
            if self.state.last_checkpoint
            else "No checkpoint had been written yet; set save_every to keep one."
        )
        self.state.status = "nan"
        self.state.message = f"NaN or inf loss at step {step}; stopped. {kept}"
        self.control.should_stop = True

    def _wait_while_paused(self) -> None:
        self.state.status, self.state.message = "paused", f"paused at step {self.state.step}"
        self._resumed.clear()
        self.callbacks.fire("on_pause", self, self.state, self.control)
        while self.control.should_pause and not self.control.should_stop:
            self._resumed.wait(0.2)
            if self._remote is not None:
                self._remote.poll(self.control, self.is_main)
        self.state.status, self.state.message = "running", f"running (step {self.state.step} of {self.max_steps})"
        self.callbacks.fire("on_resume", self, self.state, self.control)

    def _log(self, pending: list[torch.Tensor], grad_norm: Any, tokens: int, seconds: float, elapsed: float) -> None:
        state = self.state
        values = torch.stack(pending).float().cpu().tolist() if pending else [state.train_loss]
        for v in values:
            state.smoothed_loss = (
                v if math.isnan(state.smoothed_loss) else (_SMOOTHING * state.smoothed_loss + (1 - _SMOOTHING) * v)
            )
        state.train_loss = values[-1]
        state.learning_rate = float(self.scheduler.get_last_lr()[0])
        state.grad_norm = float(grad_norm) if self.config.max_grad_norm else math.nan
        state.tokens_per_second = tokens / seconds if seconds > 0 else 0.0
        state.elapsed_seconds = elapsed
        if self._peak is None:
            self._peak = (peak_flops(self.device, self.precision) or 0.0) * self.world
        state.mfu = state.tokens_per_second * self._flops_per_token / self._peak if self._peak else math.nan
        state.message = f"running (step {state.step} of {self.max_steps})"
        logs = {
            "kind": "train",
            "step": state.step,
            "epoch": round(state.epoch, 4),
            "loss": state.train_loss,
            "smoothed_loss": state.smoothed_loss,
            "learning_rate": state.learning_rate,
            "grad_norm": state.grad_norm,
            "tokens_per_second": state.tokens_per_second,
            "mfu": state.mfu,
            "tokens_seen": state.tokens_seen,
            "elapsed_seconds": elapsed,
        }
        self.history.records.append(logs)
        self.callbacks.fire("on_log", self, state, self.control, logs)

    def _evaluate_and_fire(self) -> None:
        self.control.should_evaluate = False
        metrics = self.evaluate()
        if not metrics:
            return
        state = self.state
        state.eval_metrics = metrics
        key = self.config.metric_for_best
        value = metrics.get(key)
        better = False
        if value is not None and math.isfinite(value):
            higher_is_better = not key.endswith(("loss", "perplexity"))
            best = state.best_metric
            better = best is None or (value > best if higher_is_better else value < best)
            if better:
                state.best_metric = value
        record = {"kind": "eval", "step": state.step, **metrics}
        self.history.records.append(record)
        self.callbacks.fire("on_evaluate", self, state, self.control, metrics)
        # Saved after the callbacks, so the checkpoint holds what they added (a probe recorder's records).
        if better and self.config.output_dir:
            state.best_checkpoint = str(self.save_checkpoint())


def _schedule(kind: str, warmup: int, total: int) -> Any:
    def linear(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    def cosine(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    def constant(step: int) -> float:
        return (step + 1) / (warmup + 1) if step < warmup else 1.0

    return {"linear": linear, "cosine": cosine, "constant": constant}[kind]


def _drop_autocast_forward(model: Any) -> None:
    """Undo Accelerate's patch of ``model.forward`` for mixed precision.

    ``prepare`` wraps the forward in autocast for good: every later call — an attention view,
    a probe, an attribution after training, in the same kernel — would run in bf16 or fp16
    without a word. The loop autocasts its own training and evaluation calls, so the model
    itself keeps its plain forward.
    """
    inner = getattr(model, "module", model)  # inside DistributedDataParallel where there is one
    original = inner.__dict__.pop("_original_forward", None)
    if original is not None:
        inner.forward = original


def _is_out_of_memory(error: BaseException) -> bool:
    """A CUDA (or other accelerator) out-of-memory error, whatever class this PyTorch gives it."""
    kind = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    return (kind is not None and isinstance(error, kind)) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
    )
