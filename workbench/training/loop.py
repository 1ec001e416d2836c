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
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from workbench.errors import TrainingError
from workbench.training.config import TaskName, TrainConfig
from workbench.training.distributed import Collective, SharedFlags
from workbench.training.events import Callback, CallbackList, Control, TrainState
from workbench.training.failures import is_out_of_memory, nonfinite_sentence, out_of_memory_sentence
from workbench.training.feed import BatchFeed
from workbench.training.history import TrainingHistory
from workbench.training.interrupts import restore_sigint, stop_on_sigint
from workbench.training.kernels import switch_attention, training_attention
from workbench.training.metrics import improves
from workbench.training.optimization import make_optimizer
from workbench.training.plan import plan_run
from workbench.training.precision import drop_autocast_forward, make_accelerator
from workbench.training.progress import LogWindow, Speedometer, smoothed
from workbench.training.saving import final_save, load_run, save_run, saved_at_this_step, warn_resume_renamed
from workbench.training.tasks import make_task

if TYPE_CHECKING:
    from workbench.models import ModelBundle
    from workbench.training.job import TrainingJob

__all__ = ["Trainer", "TrainingHistory"]  # TrainingHistory: its old home, still imported from here


class Trainer:
    """Train ``bundle`` on ``task`` (one of ``TASKS``: "masked-lm", "causal-lm", "classify", "next-sentence", ...).

    ``teacher`` is the trained model a ``"distill"`` task's student (``bundle``) learns from.

    ``train_data`` is a corpus (a registry name, a list of texts, a ``Corpus``) for the
    language-model tasks, labelled data for ``classify``, or a ready torch ``Dataset``.
    Everything is checked before a step runs; a mistake raises a ``WorkbenchError`` sentence.
    """

    def __init__(  # noqa: PLR0917 - the order of transformers' Trainer, which readers know
        self,
        bundle: ModelBundle,
        task: TaskName,
        train_data: Any,
        eval_data: Any = None,
        config: TrainConfig | None = None,
        callbacks: Sequence[Callback] = (),
        *,
        teacher: ModelBundle | None = None,
    ) -> None:
        self.config = config or TrainConfig()
        if not isinstance(self.config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(self.config).__name__}.")
        self.bundle = bundle
        self.teacher = teacher
        self.task = make_task(task, bundle, self.config, teacher=teacher)
        self.train_dataset = self.task.dataset(train_data, "training")
        self.eval_dataset = self.task.dataset(eval_data, "evaluation") if eval_data is not None else None
        self.collate = self.task.collator()
        self.control = Control()
        self.history = TrainingHistory()
        self._resume_state: dict[str, Any] | None = None
        self._resumed = threading.Event()
        self._resumed.set()
        # In a run of several processes started from a kernel: the kernel's requests (its buttons).
        self.shared_flags: SharedFlags | None = None
        self._shared_save_possible = True
        self._params: list[torch.nn.Parameter] = []  # the weights the optimizer updates, listed once per run
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

    def _setup_optimization(self) -> None:
        cfg = self.config
        self.accelerator, self.precision = make_accelerator(cfg.precision, cfg.device)
        self.collective = Collective(self.accelerator)
        self.world, self.rank = self.collective.world, self.collective.rank
        self.is_main = self.accelerator.is_main_process
        eval_examples = len(self.eval_dataset) if self.eval_dataset is not None else None
        self.plan = plan_run(cfg, len(self.train_dataset), eval_examples, self.world)
        # Each optimizer step takes one global batch: batch_size examples from every process.
        self.global_batch = self.plan.global_batch
        self.micro_batches_per_epoch = self.plan.micro_batches_per_epoch
        self.max_steps = self.plan.max_steps
        model = self.task.trainable()  # the model, or a readout of it (a tuned lens)
        optimizer, self.scheduler = make_optimizer(model, cfg, self.max_steps, self.plan.warmup_steps)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        drop_autocast_forward(self.model)
        self.task.adopt_trainable(self.accelerator.unwrap_model(self.model))  # never the DistributedDataParallel shell
        self.device = self.accelerator.device
        self.feed = BatchFeed(
            self.task,
            self.collate,
            train_dataset=self.train_dataset,
            eval_dataset=self.eval_dataset,
            config=cfg,
            plan=self.plan,
            rank=self.rank,
            device=self.device,
        )
        device = str(self.device) if self.world == 1 else f"{self.device.type} x {self.world} processes"
        self.state = TrainState(max_steps=self.max_steps, precision=self.precision, device=device)
        seq = getattr(cfg, self.task.length_field)
        per_token = self.task.flops_per_token(seq, processes=self.world)
        self.speedometer = Speedometer(per_token, self.device, self.precision, self.world)

    # ---------------------------------------------------------------- public

    def fit(self) -> TrainingHistory:
        """Train in this thread until done, stopped or interrupted; return the history.

        A KeyboardInterrupt stops the run cleanly: a checkpoint is written first.
        """
        self.control.should_stop = False
        self._run()
        return self.history

    def start(self) -> TrainingJob:
        """Run the same loop in a background thread; return its ``TrainingJob``."""
        from workbench.training.job import TrainingJob

        return TrainingJob(self, self._run).start()

    def resume_from(self, path: str | Path | None = None) -> Trainer:
        """Load a checkpoint (default: the latest under ``output_dir``); the next fit() continues from it.

        Raises ``CheckpointError`` when there is none, or it is incomplete or from another model.
        """
        self._resume_state = load_run(self, path)
        self.history = TrainingHistory(self._resume_state.get("history", {}).get("records", []))
        return self

    def resume(self, path: str | Path | None = None) -> Trainer:
        """Deprecated name of ``resume_from`` (``TrainingJob.resume()`` un-pauses a run; this loads a checkpoint)."""
        warn_resume_renamed("Trainer")
        return self.resume_from(path)

    def pause(self) -> None:
        self.control.should_pause = True

    def resume_running(self) -> None:
        self.control.should_pause = False
        self._resumed.set()

    def stop(self) -> None:
        self.control.should_stop = True
        self._resumed.set()

    def evaluate(self) -> dict[str, Any]:
        """Evaluate on eval_data now; return the metrics (an empty dict without eval_data).

        Under several processes each evaluates its share of the batches and the sums are
        combined, so every process gets the metrics of the whole evaluation set.
        """
        if self.eval_dataset is None:
            return {}
        batches = self.feed.evaluation()
        self.model.eval()
        try:
            parts = self.task.evaluate_parts(self.model, batches, self.accelerator.autocast)
        finally:
            self.model.train()
        return self.task.combine(self.collective.gather(parts))

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint now (needs output_dir); return its folder, or None without output_dir.

        Under several processes every process must call it (the loop does).
        """
        return save_run(self) if self.config.output_dir else None

    def training_attention(self) -> str | None:
        """The attention kernel this run trains with ("auto" resolved), or None to keep the model's own."""
        return training_attention(self.config, self.device.type, self.precision)

    # ------------------------------------------------------------------ loop

    def _run(self) -> None:
        cfg, state, control = self.config, self.state, self.control
        if state.step >= self.max_steps:
            raise TrainingError(f"This run already reached its {self.max_steps} steps; raise max_steps to train on.")
        if self._resume_state is None:
            torch.manual_seed(cfg.seed + self.rank)  # each process its own masks and dropout
        batches = self.feed.training(state.step * cfg.gradient_accumulation_steps)
        self._params = [p for p in self.model.parameters() if p.requires_grad]
        window = LogWindow(self.device)
        run_start = time.perf_counter() - state.elapsed_seconds
        state.status, state.message = "running", f"running (step {state.step} of {self.max_steps})"
        self.model.train()
        kernel_before = switch_attention(self.bundle.model, self.training_attention())
        sigint_before = stop_on_sigint(control, self.world)
        self._shared_save_possible = True
        self.callbacks.fire("on_train_begin", self, state, control)
        try:
            while state.step < self.max_steps:
                if control.should_pause and not control.should_stop:
                    self._wait_while_paused()
                    window.restart()
                if control.should_stop:
                    break
                if not self._train_step(batches, window) or not self._end_step(window, run_start):
                    break
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
            if is_out_of_memory(error):
                raise TrainingError(out_of_memory_sentence(cfg, state.step)) from None
            raise
        finally:
            state.elapsed_seconds = time.perf_counter() - run_start
            self.model.eval()  # a trained model is handed back ready to inspect: no dropout
            switch_attention(self.bundle.model, kernel_before)
            restore_sigint(sigint_before)
            final_save(self, self._shared_save_possible)
            self.callbacks.fire("on_train_end", self, state, control)

    def _train_step(self, batches: Iterator[dict[str, Any]], window: LogWindow) -> bool:
        """One optimizer step over ``gradient_accumulation_steps`` micro-batches; False where its loss was not finite.

        On a GPU the loss is not read back here (that would wait for the step): a non-finite
        loss is noted in ``window.first_bad`` and acted on at the next log.
        """
        state, accum = self.state, self.config.gradient_accumulation_steps
        step_loss = torch.zeros((), device=self.device)
        for _ in range(accum):
            batch = next(batches)
            with self.accelerator.autocast():
                loss, tokens = self.task.loss(self.model, batch)
            self.accelerator.backward(loss / accum)
            step_loss += loss.detach() / accum
            window.tokens += tokens
            if self.world == 1:
                state.tokens_seen += tokens
        # The loss of the global batch: every process sees the same, so all take the same decisions.
        self.collective.mean_(step_loss)
        finite = torch.isfinite(step_loss)
        if self.device.type == "cpu" and not bool(finite):  # on CPU reading it back costs nothing
            self._on_nonfinite(state.step + 1)
            return False
        window.first_bad = torch.where(~finite & (window.first_bad < 0), state.step + 1, window.first_bad)
        if self.config.max_grad_norm:
            window.grad_norm = self.accelerator.clip_grad_norm_(self._params, self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        state.step += 1
        self.task.on_step(state.step)
        state.epoch = state.step * accum / self.micro_batches_per_epoch
        window.losses.append(step_loss)
        return True

    def _end_step(self, window: LogWindow, run_start: float) -> bool:
        """After a step: log, evaluate, tell the callbacks, agree with the other processes, save; False to stop now."""
        cfg, state, control = self.config, self.state, self.control
        last = state.step >= self.max_steps
        if state.step % cfg.log_every == 0 or last or control.should_log:
            bad_step = int(window.first_bad)
            if bad_step >= 0:
                self._on_nonfinite(bad_step)
                return False
            now = time.perf_counter()
            if self.world > 1:
                window.tokens = int(self.collective.total(window.tokens))
                state.tokens_seen += window.tokens
            self._log(window, now - window.start, now - run_start)
            window.restart(now)
            control.should_log = False
        if (
            (cfg.eval_every and state.step % cfg.eval_every == 0)
            or control.should_evaluate
            or (last and self.eval_dataset is not None)
        ):
            self._evaluate_and_fire()
        self.callbacks.fire("on_step_end", self, state, control)
        if self.shared_flags is not None:
            self.shared_flags.poll(control, self.is_main)
        self.collective.agree(control)  # a no-op in one process
        if control.should_save:
            control.should_save = False
            if self.config.output_dir and not saved_at_this_step(self):
                self.save_checkpoint()
        return True

    def _on_nonfinite(self, step: int) -> None:
        self.state.status = "nan"
        self.state.message = nonfinite_sentence(step, self.state.last_checkpoint)
        self.control.should_stop = True

    def _wait_while_paused(self) -> None:
        self.state.status, self.state.message = "paused", f"paused at step {self.state.step}"
        self._resumed.clear()
        self.callbacks.fire("on_pause", self, self.state, self.control)
        while self.control.should_pause and not self.control.should_stop:
            self._resumed.wait(0.2)
            if self.shared_flags is not None:
                self.shared_flags.poll(self.control, self.is_main)
        self.state.status, self.state.message = "running", f"running (step {self.state.step} of {self.max_steps})"
        self.callbacks.fire("on_resume", self, self.state, self.control)

    def _log(self, window: LogWindow, seconds: float, elapsed: float) -> None:
        state = self.state
        values = torch.stack(window.losses).float().cpu().tolist() if window.losses else [state.train_loss]
        state.smoothed_loss = smoothed(state.smoothed_loss, values)
        state.train_loss = values[-1]
        state.learning_rate = float(self.scheduler.get_last_lr()[0])
        state.grad_norm = float(window.grad_norm) if self.config.max_grad_norm else math.nan
        state.tokens_per_second = window.tokens / seconds if seconds > 0 else 0.0
        state.elapsed_seconds = elapsed
        state.mfu = self.speedometer.mfu(state.tokens_per_second)
        state.mfu_basis = self.speedometer.basis
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
            # A loss of several parts (ELECTRA's generator and discriminator): each, at the step whose loss is logged.
            **self.task.log_parts(self.config.gradient_accumulation_steps),
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
            better = improves(key, value, state.best_metric)
            if better:
                state.best_metric = value
        record = {"kind": "eval", "step": state.step, **metrics}
        self.history.records.append(record)
        self.callbacks.fire("on_evaluate", self, state, self.control, metrics)
        # Saved after the callbacks, so the checkpoint holds what they added (a probe recorder's records).
        if better and self.config.output_dir:
            state.best_checkpoint = str(self.save_checkpoint())
