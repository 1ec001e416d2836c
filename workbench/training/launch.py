"""The Trainer in several processes, started from a notebook cell through ``accelerate.notebook_launcher``.

Example::

    from workbench.training import DistributedTrainer, TrainConfig
    run = DistributedTrainer(bundle, "causal-lm", corpus, config=TrainConfig(output_dir="runs/ddp", max_steps=300),
                             num_processes=2)
    dashboard.run(run)        # live curves from the main process; Stop stops every process
    # or: history = run.fit()

Each process runs the unchanged ``Trainer`` on its share of every global batch
(``batch_size`` examples per process). The main process sends its events (logs,
evaluations, saves) through a queue to this kernel, where they feed this object's
``state``, ``history`` and callbacks (a dashboard, a console printer), so it stands in for a
``Trainer`` wherever one is shown. Buttons and ``stop()`` reach every process through shared
flags. When the run ends, the bundle in this kernel is loaded with the final weights.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from workbench.errors import ConfigError, TrainingError
from workbench.training.config import TaskName, TrainConfig
from workbench.training.distributed import RemoteControl, SharedFlags
from workbench.training.events import Callback, CallbackList, Control, MainProcessCallback, TrainState
from workbench.training.history import TrainingHistory
from workbench.training.job import TrainingJob
from workbench.training.plan import plan_run
from workbench.training.processes import WorkerSpec, free_port, fresh_accelerate_state, run_worker
from workbench.training.saving import warn_resume_renamed

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["DistributedJob", "DistributedTrainer"]

_STATE_FIELDS = {f.name for f in dataclasses.fields(TrainState)}


class DistributedTrainer:
    """Train ``bundle`` in ``num_processes`` processes from this kernel (several GPUs, or CPU processes).

    Takes the Trainer's arguments; ``batch_size`` in the config is per process, so the global
    batch is ``batch_size * num_processes``. ``callbacks`` run here, in this kernel, fed with
    the main process's events; ``worker_callbacks`` run inside every training process.
    Everything is checked here before any process starts; a mistake is one sentence.
    """

    def __init__(  # noqa: PLR0917 - the Trainer's arguments, in its order
        self,
        bundle: ModelBundle,
        task: TaskName,
        train_data: Any,
        eval_data: Any = None,
        config: TrainConfig | None = None,
        callbacks: Sequence[Callback] = (),
        *,
        num_processes: int = 2,
        worker_callbacks: Sequence[Callback] = (),
        port: int | None = None,
        teacher: ModelBundle | None = None,
    ) -> None:
        import torch

        from workbench.training.tasks import make_task

        self.config = config or TrainConfig()
        if not isinstance(self.config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(self.config).__name__}.")
        if not isinstance(num_processes, int) or isinstance(num_processes, bool) or num_processes < 1:
            raise ConfigError(f"num_processes must be a positive integer, got {num_processes!r}.")
        if not self.config.output_dir:
            raise ConfigError(
                "Training in several processes needs output_dir: the trained weights come back to this "
                "kernel through the final checkpoint. Set TrainConfig(output_dir='runs/...')."
            )
        if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]  # unannotated in torch
            raise TrainingError(
                "CUDA is already in use in this kernel, and processes forked from it cannot use it; "
                "restart the kernel and launch before any GPU work, or run `accelerate launch -m "
                "workbench pretrain ...` from a terminal."
            )
        self.num_processes = num_processes
        self.bundle = bundle
        self.teacher = teacher
        self.task = make_task(task, bundle, self.config, teacher=teacher)  # checks task and model here, before any fork
        if not self.task.several_processes:
            raise ConfigError(
                f"The {task!r} task trains a readout of a frozen model, which runs in one process; "
                "use Trainer(bundle, task, ...) instead of DistributedTrainer."
            )
        self.train_dataset = self.task.dataset(train_data, "training")
        self.eval_dataset = self.task.dataset(eval_data, "evaluation") if eval_data is not None else None
        eval_examples = len(self.eval_dataset) if self.eval_dataset is not None else None
        self.plan = plan_run(self.config, len(self.train_dataset), eval_examples, num_processes)
        self.port = port
        self.worker_callbacks = list(worker_callbacks)
        self._context = multiprocessing.get_context("fork")
        self._flags = SharedFlags(self._context)
        self.control: Control = RemoteControl(self._flags)
        self.history = TrainingHistory()
        self.state = TrainState(max_steps=self.plan.max_steps, device=f"{num_processes} processes")
        built_in: list[Callback] = []
        if self.config.progress:
            from workbench.training.callbacks import ConsolePrinter

            built_in.append(ConsolePrinter())
        # A probe recorder needs the model as it trains: it runs in the main process, and its records
        # come back to the recorder here (and to its ProbeTimeline) through the queue.
        self.recorders = [cast(MainProcessCallback, cb) for cb in callbacks if cb.runs_in_main_process]
        for recorder in self.recorders:
            recorder.check(bundle)  # a probe without a mask, or a multi-token answer: a sentence before any fork
        self.callbacks = CallbackList(built_in + [cb for cb in callbacks if not cb.runs_in_main_process])
        self.events: list[tuple[str, int]] = []  # (event, process) as received: which process spoke
        self._resume_from: str | None = None
        self._job: DistributedJob | None = None

    # ------------------------------------------------------------ the Trainer's surface

    def fit(self) -> TrainingHistory:
        """Train in the processes until done or stopped; return the history (the main process's)."""
        job = self.start()
        job.wait()
        return self.history

    def start(self) -> DistributedJob:
        """Start the processes and return at once; the job's ``wait()`` blocks until they end."""
        if self._job is not None and self._job.running:
            raise TrainingError("This run is already going; stop it or wait for it first.")
        self._flags = SharedFlags(self._context)
        object.__setattr__(self.control, "_flags", self._flags)
        self._job = DistributedJob(self).start()
        return self._job

    def resume_from(self, path: str | Path | None = None) -> DistributedTrainer:
        """Continue from a checkpoint (default: the latest under output_dir) when the run starts."""
        from workbench.errors import CheckpointError
        from workbench.training import checkpoint as ckpt

        if path is None:
            path = ckpt.latest_checkpoint(Path(self.config.output_dir or ".") / ckpt.CHECKPOINTS_FOLDER)
            if path is None:
                raise CheckpointError(f"No complete checkpoint under {self.config.output_dir}/checkpoints.")
        self._resume_from = str(path)
        return self

    def resume(self, path: str | Path | None = None) -> DistributedTrainer:
        """Deprecated name of ``resume_from`` (``DistributedJob.resume()`` un-pauses a run; this picks a checkpoint)."""
        warn_resume_renamed("DistributedTrainer")
        return self.resume_from(path)

    def pause(self) -> None:
        self._flags.request("pause", True)

    def resume_running(self) -> None:
        self._flags.request("pause", False)

    def stop(self) -> None:
        self._flags.request("stop")

    # ------------------------------------------------------------ the launch

    def _launch(self, queue: Any) -> None:
        from accelerate import notebook_launcher
        from accelerate.state import AcceleratorState, GradientState, PartialState

        spec = WorkerSpec(
            self.bundle,
            self.task.name,
            self.train_dataset,
            self.eval_dataset,
            self.config.replace(progress=False),
            self.worker_callbacks,
            self._flags,
            queue,
            self._resume_from,
            self.recorders,
            self.teacher,
        )
        # Its agent warns, from our launcher thread, that it cannot install signal handlers there: we
        # need none (this kernel's interrupt becomes Stop, and the processes watch for a dead kernel).
        elastic_log = logging.getLogger("torch.distributed.elastic.multiprocessing.api")
        level = elastic_log.level
        elastic_log.setLevel(logging.ERROR)
        try:
            for attempt in range(2):
                port = self.port or free_port()
                try:
                    with fresh_accelerate_state(AcceleratorState, PartialState, GradientState):
                        notebook_launcher(
                            run_worker, args=(spec,), num_processes=self.num_processes, use_port=str(port)
                        )
                    break
                except Exception as error:
                    # A port found free can be taken before the launcher binds it; choose another once.
                    if self.port or attempt or "address already in use" not in str(error).lower():
                        raise
        finally:
            elastic_log.setLevel(level)

    def _apply(self, state: dict[str, Any] | None) -> None:
        if state:
            for key, value in state.items():
                if key in _STATE_FIELDS:
                    setattr(self.state, key, value)

    def _relay(self, queue: Any, job: DistributedJob) -> None:
        """In this kernel: turn the main process's events into this object's state, history and callbacks."""
        cb, st, control = self.callbacks, self.state, self.control
        failure: str | None = None
        while True:
            item = queue.get()
            if item is None:  # the launcher is done: every process has ended
                break
            kind, rank, state, payload = item
            self.events.append((kind, rank))
            if kind == "error":
                failure = failure or payload
                continue
            if kind == "probe":
                self.history.records.append(payload)
                self.recorders[state].add(payload)  # for a probe, ``state`` carries the recorder's index
                continue
            self._apply(state)
            if kind == "begin":
                self.history.records[:] = payload
                for recorder in self.recorders:
                    recorder.restore(payload)  # a resumed run's earlier probe records
                cb.fire("on_train_begin", self, st, control)
            elif kind == "log":
                self.history.records.append(payload)
                cb.fire("on_log", self, st, control, payload)
            elif kind == "evaluate":
                self.history.records.append(payload)
                metrics = {k: v for k, v in payload.items() if k not in ("kind", "step")}
                cb.fire("on_evaluate", self, st, control, metrics)
            elif kind == "save":
                cb.fire("on_save", self, st, control, payload)
            elif kind in ("pause", "resume"):
                cb.fire(f"on_{kind}", self, st, control)
        error = job.launch_error
        if error is not None or failure:
            detail = failure or _last_line(error)
            st.status, st.message = "failed", f"failed at step {st.step}: {detail}"
            job.error = TrainingError(
                f"A training process failed at step {st.step} ({detail}); "
                f"the last checkpoint is {st.last_checkpoint or 'none: nothing was saved'}."
            )
            cb.fire("on_exception", self, st, control, job.error)
        self._load_final_weights()
        cb.fire("on_train_end", self, st, control)

    def _load_final_weights(self) -> None:
        """Put the trained weights into this kernel's bundle, so the notebook inspects the trained model."""
        from workbench.training import checkpoint as ckpt

        if not self.state.last_checkpoint:
            return
        try:
            ckpt.read_checkpoint(
                Path(self.state.last_checkpoint),
                model=self.bundle.model,
                restore_rng=False,
                load_weights=self.task.load_weights,
            )
            self.bundle.model.eval()
        except Exception as error:  # never hide the run's outcome behind a failed courtesy
            self.state.message += f"; the final weights could not be loaded here: {error}"

    def __repr__(self) -> str:
        return f"DistributedTrainer({self.num_processes} processes, {self.state.message or self.state.status})"


class DistributedJob(TrainingJob):
    """A run in several processes, watched from this kernel: ``running``, ``wait()``, ``stop()``, ``pause()``.

    Two daemon threads: one runs Accelerate's launcher (it blocks until every process ends),
    the job's own relays the main process's events to the callbacks here.
    """

    def __init__(self, trainer: DistributedTrainer) -> None:
        super().__init__(trainer, lambda: trainer._relay(self._queue, self))
        self.distributed = trainer
        self.launch_error: BaseException | None = None
        self._queue = trainer._context.SimpleQueue()

    def start(self) -> DistributedJob:
        threading.Thread(target=self._launcher, name="workbench-launcher", daemon=True).start()
        super().start()
        return self

    def _launcher(self) -> None:
        try:
            self.distributed._launch(self._queue)
        except BaseException as error:  # re-raised by wait() as one sentence
            self.launch_error = error
        finally:
            self._queue.put(None)

    def __repr__(self) -> str:
        return f"DistributedJob({self.state.message or self.state.status})"


def _last_line(error: BaseException | None) -> str:
    text = str(error or "").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
