"""Checkpoints: one folder per save, written under a temporary name and renamed when complete.

A checkpoint folder is also a model folder (``load_model(path)`` works on it) and holds what
a resumed run needs: ``optimizer.pt``, ``scheduler.pt``, ``rng.pt`` and ``trainer_state.json``.
Folders whose names do not match ``step-NNNNNNN`` (the partial ones) are never loaded.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from workbench.errors import CheckpointError

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = [
    "CHECKPOINTS_FOLDER",
    "STATE_FILE",
    "checkpoint_label",
    "checkpoint_name",
    "checkpoint_step",
    "latest_checkpoint",
    "list_checkpoints",
    "load_model_weights",
    "model_fingerprint",
    "prune_checkpoints",
    "read_checkpoint",
    "run_checkpoints",
    "write_checkpoint",
    "write_shared_checkpoint",
]

# The one place that knows how a checkpoint folder is named: ``step-`` and the step in seven digits.
_NAME = re.compile(r"^step-([0-9]{7})$")  # ASCII digits only: "step-٠٠٠٠٠٠١" is not a checkpoint
STATE_FILE = "trainer_state.json"
CHECKPOINTS_FOLDER = "checkpoints"  # a run's output_dir keeps its checkpoints here


def checkpoint_name(step: int) -> str:
    """The folder name of the checkpoint saved at ``step``: ``step-0000200`` for step 200."""
    return f"step-{step:07d}"


def checkpoint_step(path: str | os.PathLike[str]) -> int | None:
    """The step a checkpoint folder was saved at (200 for ``.../step-0000200``), or None for any other folder."""
    match = _NAME.match(Path(path).name)
    return int(match.group(1)) if match else None


def checkpoint_label(path: str | os.PathLike[str]) -> str:
    """How a checkpoint is named for people: "step 200" for a checkpoint folder, the folder's name otherwise."""
    step = checkpoint_step(path)
    return f"step {step}" if step is not None else Path(path).name


def model_fingerprint(model: Any) -> dict[str, Any]:
    """What must match for a checkpoint to belong to a model: its type and shapes."""
    cfg = model.config
    keys = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "num_labels")
    return {k: getattr(cfg, k, None) for k in keys}


def _rng_state() -> dict[str, Any]:
    # numpy's state as plain values and a tensor, so torch.load(weights_only=True) reads it back.
    legacy = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state(legacy=True))
    kind, keys, pos, has_gauss, cached = legacy
    numpy_state = (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_checkpoint(
    root: Path,
    step: int,
    *,
    bundle: ModelBundle,
    optimizer: Any,
    scheduler: Any,
    trainer_state: dict[str, Any],
    write_weights: Callable[[Path], None] | None = None,
) -> Path:
    """Write a complete checkpoint for ``step`` under ``root``; return its folder.

    ``write_weights(folder)`` writes what was trained (by default the model's files, so the checkpoint is a
    model folder; a readout's task writes the readout); the fingerprint is always the model's."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=root))
    try:
        (write_weights or bundle.write_files)(tmp)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(_rng_state(), tmp / "rng.pt")
        payload = {**trainer_state, "fingerprint": model_fingerprint(bundle.model)}
        (tmp / STATE_FILE).write_text(json.dumps(payload, indent=1, default=_json_default))
        _fsync_dir(tmp)
        if final.exists():  # the same step saved twice (Stop right after a periodic save)
            shutil.rmtree(final)
        os.replace(tmp, final)
    except OSError as e:
        raise CheckpointError(
            f"Could not write the checkpoint for step {step} in {root} ({e.strerror or e}); "
            "free some disk space or choose another output_dir. Earlier checkpoints are untouched."
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def write_shared_checkpoint(
    root: Path,
    step: int,
    *,
    bundle: ModelBundle,
    model: Any,
    accelerator: Any,
    scheduler: Any,
    trainer_state: dict[str, Any],
    collective: Any,
    write_weights: Callable[[Path, dict[str, torch.Tensor]], None] | None = None,
) -> Path:
    """Write a checkpoint of a run in several processes; every process calls it.

    The main process writes the model folder (weights gathered by Accelerate, so a sharded
    model saves whole), the scheduler and the run's state; Accelerate's ``save_state`` writes
    the optimizer and each process's random state into ``accelerate/`` (its weights are
    skipped: they are the model folder's). The folder gets its final name only when every
    process has written its part.
    """
    root = Path(root)
    final = root / checkpoint_name(step)
    tmp = root / f".{final.name}.partial-shared"
    main = collective.rank == 0
    failure = ""
    if main:
        try:
            root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
        except OSError as e:
            failure = e.strerror or str(e)
    weights = accelerator.get_state_dict(model)  # a collective under FSDP or DeepSpeed
    failure = _first_failure(collective, failure)
    if not failure:
        handle = accelerator.register_save_state_pre_hook(lambda models, states, folder: states.clear())
        try:
            accelerator.save_state(str(tmp / "accelerate"))
        except OSError as e:
            failure = e.strerror or str(e)
        finally:
            handle.remove()
        failure = _first_failure(collective, failure)
    if not failure and main:
        try:
            if write_weights is None:
                bundle.write_files(tmp, state_dict=weights)
            else:  # the task knows what the trained module's weights hold (a model with its objective's heads)
                write_weights(tmp, weights)
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
            payload = {**trainer_state, "fingerprint": model_fingerprint(bundle.model)}
            (tmp / STATE_FILE).write_text(json.dumps(payload, indent=1, default=_json_default))
            _fsync_dir(tmp)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except OSError as e:
            failure = e.strerror or str(e)
    failure = _first_failure(collective, failure)
    if failure:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(
            f"Could not write the checkpoint for step {step} in {root} ({failure}); "
            "free some disk space or choose another output_dir. Earlier checkpoints are untouched."
        )
    return final


def _first_failure(collective: Any, failure: str) -> str:
    """Every process learns whether any failed, so all raise together rather than wait for each other."""
    found = [f for f in collective.gather(failure) if f]
    return found[0] if found else ""


def _fsync_dir(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def read_checkpoint(
    path: Path,
    *,
    model: Any,
    optimizer: Any = None,
    scheduler: Any = None,
    restore_rng: bool = True,
    accelerator: Any = None,
    load_weights: Callable[[Path], None] | None = None,
) -> dict[str, Any]:
    """Load weights (and optimizer, scheduler, RNG) from a checkpoint into live objects; return its state.

    A checkpoint of a run in several processes keeps its optimizer and random states in
    ``accelerate/``, read with Accelerate's ``load_state`` (which loads with
    ``weights_only=True``); it resumes in any number of processes, one included.

    ``load_weights(folder)`` loads what was trained (by default the model's weights into ``model``).
    Raises ``CheckpointError`` when the folder is not a complete checkpoint or was written
    for a model of another shape.
    """
    path = Path(path)
    state_file = path / STATE_FILE
    if checkpoint_step(path) is None or not state_file.exists():
        raise CheckpointError(f"{path} is not a complete checkpoint (no {STATE_FILE}); pick a step-NNNNNNN folder.")
    saved: dict[str, Any] = json.loads(state_file.read_text())
    mine, theirs = model_fingerprint(model), saved.get("fingerprint", {})
    diff = {k: (theirs.get(k), v) for k, v in mine.items() if theirs.get(k) != v}
    if diff:
        detail = ", ".join(f"{k} {a} vs {b}" for k, (a, b) in diff.items())
        raise CheckpointError(
            f"{path} was saved from another model ({detail}); resume with the model it was trained on."
        )
    (load_weights or (lambda folder: load_model_weights(model, folder)))(path)
    shared = path / "accelerate"
    if shared.is_dir():
        if optimizer is not None:
            if accelerator is None:
                raise CheckpointError(f"{path} was written by several processes; resume it through a Trainer.")
            # Weights come from the model folder above; Accelerate loads the optimizer and this process's RNG.
            handle = accelerator.register_load_state_pre_hook(lambda models, folder: models.clear())
            try:
                accelerator.load_state(str(shared))
            finally:
                handle.remove()
    else:
        if optimizer is not None:
            optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True, map_location=_device(model)))
        if restore_rng:
            _set_rng_state(torch.load(path / "rng.pt", weights_only=True))
    if scheduler is not None:
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    return saved


def load_model_weights(model: Any, folder: Path) -> None:
    """Load ``folder/model.safetensors`` into ``model``; raises ``CheckpointError`` when they do not fit."""
    import safetensors.torch

    weights = Path(folder) / "model.safetensors"
    missing, unexpected = safetensors.torch.load_model(model, str(weights), strict=False, device=str(_device(model)))
    if unexpected or any(not _is_tied(model, name) for name in missing):
        raise CheckpointError(f"{weights} does not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]}).")


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _is_tied(model: Any, name: str) -> bool:
    """Tied weights (an output head sharing the embedding) are saved once and reported missing."""
    tied = getattr(model, "_tied_weights_keys", None) or {}
    names = tied.keys() if isinstance(tied, dict) else tied
    return any(re.fullmatch(pattern.replace(".", r"\."), name) or pattern == name for pattern in names)


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if checkpoint_step(p) is not None and (p / STATE_FILE).exists()]
    return sorted(found, key=lambda p: p.name)


def run_checkpoints(folder: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints, oldest first, of a run folder: its own or those in its ``checkpoints`` folder."""
    return list_checkpoints(Path(folder)) or list_checkpoints(Path(folder) / CHECKPOINTS_FOLDER)


def latest_checkpoint(root: Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def prune_checkpoints(root: Path, keep_last: int, keep: set[str]) -> None:
    """Delete all but the last ``keep_last`` checkpoints and those named in ``keep`` (the best)."""
    found = list_checkpoints(root)
    for path in found[:-keep_last] if keep_last else found:
        if str(path) not in keep:
            shutil.rmtree(path, ignore_errors=True)
