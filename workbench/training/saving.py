"""How a ``Trainer`` writes its checkpoints and picks a run up from one (the folder format is ``checkpoint``'s)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import CheckpointError
from workbench.training import checkpoint as ckpt

if TYPE_CHECKING:
    from workbench.training.loop import Trainer

__all__ = ["checkpoint_root", "final_save", "load_run", "save_run", "saved_at_this_step", "warn_resume_renamed"]


def checkpoint_root(trainer: Trainer) -> Path:
    """Where the run's checkpoints go: ``output_dir/checkpoints``."""
    return Path(trainer.config.output_dir or ".") / ckpt.CHECKPOINTS_FOLDER


def save_run(trainer: Trainer) -> Path:
    """Write a checkpoint of ``trainer`` at its step; prune old ones; tell the callbacks. Returns its folder.

    Under several processes every process must call it: the main one writes the model and the
    run's state; Accelerate's ``save_state`` writes the optimizer and each process's random state.
    """
    root, step = checkpoint_root(trainer), trainer.state.step
    trainer_state = {
        "state": trainer.state.to_dict(),
        "history": trainer.history.to_dict(),
        "config": trainer.config.to_dict(),
        "task": trainer.task.name,
        "processes": trainer.world,
    }
    common: dict[str, Any] = {"bundle": trainer.bundle, "scheduler": trainer.scheduler, "trainer_state": trainer_state}
    if trainer.world == 1:
        path = ckpt.write_checkpoint(
            root, step, optimizer=trainer.optimizer, write_weights=trainer.task.write_weights, **common
        )
    else:
        path = ckpt.write_shared_checkpoint(
            root,
            step,
            model=trainer.model,
            accelerator=trainer.accelerator,
            collective=trainer.collective,
            write_weights=trainer.task.write_weights,
            **common,
        )
    trainer.state.last_checkpoint = str(path)
    keep = {trainer.state.best_checkpoint} if trainer.state.best_checkpoint else set()
    if trainer.is_main:
        ckpt.prune_checkpoints(root, trainer.config.keep_last, keep)
    trainer.callbacks.fire("on_save", trainer, trainer.state, trainer.control, str(path))
    return path


def load_run(trainer: Trainer, path: str | Path | None) -> dict[str, Any]:
    """Load a checkpoint (default: the latest under ``output_dir``) into ``trainer``'s model, optimizer and state.

    Returns what the checkpoint saved. Raises ``CheckpointError`` when there is none, or it is
    incomplete or from another model.
    """
    if path is None:
        if not trainer.config.output_dir:
            raise CheckpointError("No checkpoint given and no output_dir to look in; pass the checkpoint folder.")
        path = ckpt.latest_checkpoint(checkpoint_root(trainer))
        if path is None:
            raise CheckpointError(f"No complete checkpoint under {trainer.config.output_dir}/checkpoints.")
    path = Path(path)
    saved = ckpt.read_checkpoint(
        path,
        model=trainer.bundle.model,
        optimizer=trainer.optimizer,
        scheduler=trainer.scheduler,
        accelerator=trainer.accelerator,
        load_weights=trainer.task.load_weights,
    )
    trainer.state.restore(saved["state"])
    trainer.task.on_step(trainer.state.step)
    trainer.state.last_checkpoint = str(path)
    return saved


def saved_at_this_step(trainer: Trainer) -> bool:
    """True when the run's last checkpoint is of its current step (no need to write it again)."""
    last = trainer.state.last_checkpoint
    return last is not None and ckpt.checkpoint_step(last) == trainer.state.step


def final_save(trainer: Trainer, processes_can_meet: bool) -> None:
    """The save of a run's ``finally:``: every way of stopping keeps what was trained, except a NaN's.

    ``processes_can_meet`` is False where several processes were interrupted at different
    points: a save together could wait forever, so the last checkpoint is kept instead.
    """
    state = trainer.state
    if state.status == "nan" or not trainer.config.output_dir or state.step == 0:
        return
    if not processes_can_meet:
        state.message += "; no final checkpoint: the processes could not meet to save (the last one is kept)"
        return
    if saved_at_this_step(trainer):
        return
    try:
        save_run(trainer)
    except CheckpointError as e:
        state.message += f"; the final checkpoint could not be written: {e}"
        raise


def warn_resume_renamed(owner: str) -> None:
    """Say once per call site that ``owner.resume(path)`` is now ``owner.resume_from(path)``.

    The job's ``resume()`` un-pauses a run; the trainer's picked a checkpoint. One name per meaning.
    """
    warnings.warn(
        f"{owner}.resume(path) is now {owner}.resume_from(path), which picks the checkpoint to start from; "
        "resume() will be removed (to continue a paused run, use job.resume() or trainer.resume_running()).",
        DeprecationWarning,
        stacklevel=3,
    )
