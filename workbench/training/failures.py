"""How a run that cannot go on says so: out of memory, a NaN or infinite loss. Each is one sentence."""

from __future__ import annotations

import torch

from workbench.training.config import TrainConfig

__all__ = ["is_out_of_memory", "nonfinite_sentence", "out_of_memory_sentence"]


def is_out_of_memory(error: BaseException) -> bool:
    """A CUDA (or other accelerator) out-of-memory error, whatever class this PyTorch gives it."""
    kind = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    return (kind is not None and isinstance(error, kind)) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
    )


def out_of_memory_sentence(config: TrainConfig, step: int) -> str:
    """What to change after running out of memory at ``step`` + 1, and what was kept."""
    smaller = max(1, config.batch_size // 2)
    saved = (
        f"the run stopped at step {step} and saves a checkpoint there, so trainer.resume_from() continues"
        if config.output_dir and step
        else "nothing was trained yet"
    )
    return (
        f"Out of memory at step {step + 1} with batch_size={config.batch_size}: set batch_size={smaller} with "
        f"gradient_accumulation_steps={config.gradient_accumulation_steps * 2} (the same batch per update in "
        f"less memory) or a shorter block_size/max_length; {saved}."
    )


def nonfinite_sentence(step: int, last_checkpoint: str | None) -> str:
    """The message of a run stopped by a NaN or infinite loss at ``step``, naming the checkpoint that is kept."""
    kept = (
        f"The last good checkpoint is {last_checkpoint}."
        if last_checkpoint
        else "No checkpoint had been written yet; set save_every to keep one."
    )
    return f"NaN or inf loss at step {step}; stopped. {kept}"
