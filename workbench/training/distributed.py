"""What the one loop needs when Accelerate runs it in several processes: agreement, reductions, shared flags.

Every process runs the same loop on its share of each global batch. Whatever changes the
loop's course (Stop, Pause, Save, Evaluate, a NaN) must happen at the same step in every
process, or one of them waits forever in a collective; so at each step the processes agree
on their ``Control`` flags (one small all-reduce on CPU tensors: with NCCL it goes through a
gloo group, so it never waits on the GPU).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from workbench.training.events import Control

__all__ = ["Collective", "RemoteControl", "SharedFlags"]

_FLAGS = ("should_stop", "should_pause", "should_save", "should_evaluate", "should_log")


class Collective:
    """Reductions and agreement among the processes of one run (a no-op shell for a single process)."""

    def __init__(self, accelerator: Any):
        self.world = accelerator.num_processes
        self.rank = accelerator.process_index
        self.group = None
        if self.world > 1:
            import torch.distributed as dist

            # Control flags and small Python objects travel on CPU: a gloo group beside NCCL.
            if dist.get_backend() != "gloo":
                self.group = dist.new_group(backend="gloo")

    def mean_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Average a device tensor over the processes, in place (asynchronous on a GPU: no host sync)."""
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            tensor /= self.world
        return tensor

    def total(self, value: float) -> float:
        """The sum of a number over the processes."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        t = torch.tensor([float(value)], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=self.group)
        return float(t)

    def agree(self, control: Any) -> None:
        """Set each Control flag in every process where any process has it set."""
        if self.world == 1:
            return
        import torch.distributed as dist

        t = torch.tensor([int(bool(getattr(control, name))) for name in _FLAGS], dtype=torch.int32)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.group)
        for name, value in zip(_FLAGS, t.tolist(), strict=True):
            setattr(control, name, bool(value))

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order (small Python objects: evaluation sums)."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier(group=self.group)


class SharedFlags:
    """Requests from the launching kernel (its dashboard's buttons) to the training processes.

    Shared memory made before the processes fork. Stop and Pause are levels that every
    process reads; Save and Evaluate are one-shot requests that the main process takes (and
    the per-step agreement hands to the others), so each is acted on exactly once.
    """

    def __init__(self, context: Any):
        self._values = context.Array("i", 4, lock=True)  # stop, pause, save requests, evaluate requests
        self._taken = [0, 0]  # in each process: the save and evaluate requests already acted on
        self.parent_pid = os.getpid()

    # the launching side
    def request(self, name: str, value: bool = True) -> None:
        with self._values.get_lock():
            if name == "stop":
                self._values[0] = 1
            elif name == "pause":
                self._values[1] = int(value)
            elif name == "save":
                self._values[2] += 1
            elif name == "evaluate":
                self._values[3] += 1

    def get(self, name: str) -> bool:
        index = {"stop": 0, "pause": 1}[name]
        return bool(self._values[index])

    # the training side
    def poll(self, control: Any, main: bool) -> None:
        """Copy the requests into a process's Control (Save and Evaluate in the main process only)."""
        stop, pause, saves, evaluations = self._values[:]
        if stop or os.getppid() != self.parent_pid:  # a launching kernel that died stops the run too
            control.should_stop = True
        control.should_pause = bool(pause)
        if main:
            if saves > self._taken[0]:
                self._taken[0] = saves
                control.should_save = True
            if evaluations > self._taken[1]:
                self._taken[1] = evaluations
                control.should_evaluate = True


class RemoteControl(Control):
    """A Control whose requests go to the training processes (the dashboard's Save button sets should_save)."""

    def __init__(self, flags: SharedFlags) -> None:
        object.__setattr__(self, "_flags", flags)

    def __setattr__(self, name: str, value: Any) -> None:
        request = {
            "should_stop": "stop",
            "should_pause": "pause",
            "should_save": "save",
            "should_evaluate": "evaluate",
        }.get(name)
        if request is None:
            return  # should_log: the processes log on their own schedule
        if request in ("save", "evaluate", "stop") and not value:
            return  # one-shot requests and Stop cannot be taken back
        self._flags.request(request, bool(value))

    def __getattribute__(self, name: str) -> Any:
        if name in ("should_stop", "should_pause"):
            return object.__getattribute__(self, "_flags").get(name.removeprefix("should_"))
        if name in ("should_save", "should_evaluate", "should_log"):
            return False
        return object.__getattribute__(self, name)
