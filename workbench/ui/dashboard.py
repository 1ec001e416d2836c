"""``TrainingDashboard``: live curves and controls for a run, with the loop in a background thread.

Example (one notebook cell)::

    from workbench.ui import TrainingDashboard
    dashboard = TrainingDashboard()
    dashboard.run(trainer)        # returns at once; the kernel stays free, the buttons work
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import anywidget
import ipywidgets
import traitlets

from workbench.training.events import Callback, Control, TrainState
from workbench.training.job import TrainingJob
from workbench.training.metrics import finite_or_none
from workbench.training.run import Run
from workbench.ui._assets import widget_file, widget_module
from workbench.ui.snapshot import curves_svg

__all__ = ["DashboardCallback", "TrainingDashboard", "downsample"]

_PALETTE = ["#0969da", "#d1242f", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83", "#bf3989", "#57606a"]
MAX_POINTS = 800  # per series sent to the browser: enough for a smooth curve, small in a saved notebook
MIN_INTERVAL_S = 0.2  # at most five updates a second, whatever the step rate


def downsample(values: Sequence[float | None], max_points: int = MAX_POINTS) -> list[int]:
    """Indices of at most ~``max_points`` values: each bucket's first point and extremes, and the last point."""
    n = len(values)
    if n <= max_points:
        return list(range(n))
    buckets = max(1, max_points // 3)
    size = n / buckets
    keep: set[int] = {n - 1}
    for b in range(buckets):
        lo, hi = int(b * size), min(n, max(int((b + 1) * size), int(b * size) + 1))
        keep.add(lo)
        finite = {i: v for i in range(lo, hi) if (v := values[i]) is not None and math.isfinite(v)}
        if finite:
            keep.add(min(finite, key=finite.__getitem__))
            keep.add(max(finite, key=finite.__getitem__))
    return sorted(keep)


def _round(values: list[Any], digits: int = 6) -> list[float | None]:
    """JSON-safe and short: NaN and inf become None (the view shows them as a dash), the rest ``digits`` figures."""
    return [None if finite_or_none(v) is None else float(f"{v:.{digits}g}") for v in values]


class DashboardCallback(Callback):
    """Feeds a dashboard from the training thread: it marks the view stale; the dashboard throttles the pushes."""

    def __init__(self, dashboard: TrainingDashboard):
        self.dashboard = dashboard

    def on_train_begin(self, trainer: Run, state: TrainState, control: Control) -> None:
        self.dashboard._thread_started()
        self.dashboard._changed()

    def on_log(self, trainer: Run, state: TrainState, control: Control, logs: dict[str, Any]) -> None:
        self.dashboard._changed()

    def on_evaluate(self, trainer: Run, state: TrainState, control: Control, metrics: dict[str, Any]) -> None:
        self.dashboard._changed()

    def on_pause(self, trainer: Run, state: TrainState, control: Control) -> None:
        self.dashboard._changed(immediately=True)

    def on_resume(self, trainer: Run, state: TrainState, control: Control) -> None:
        self.dashboard._changed(immediately=True)

    def on_save(self, trainer: Run, state: TrainState, control: Control, path: str) -> None:
        self.dashboard._changed()

    def on_train_end(self, trainer: Run, state: TrainState, control: Control) -> None:
        self.dashboard._finished()


class TrainingDashboard(anywidget.AnyWidget):
    """Live loss, learning-rate and speed curves of one or more runs, the run's status, and its buttons.

    ``run(trainer)`` starts the loop in a background thread (in the foreground on Colab, which
    renders no widget updates from threads) and overlays each new run on the earlier ones.
    """

    _esm = widget_module("dashboard.js")
    _css = widget_file("dashboard.css")

    runs: traitlets.List[dict[str, Any]] = traitlets.List([]).tag(sync=True)
    status = traitlets.Dict({}).tag(sync=True)
    log_scale = traitlets.Bool(False).tag(sync=True)
    notice = traitlets.Unicode("").tag(sync=True)
    can_start = traitlets.Bool(False).tag(sync=True)
    # The static snapshot below a live view carries this id as a class; where the view renders, it hides it.
    snapshot_id = traitlets.Unicode("").tag(sync=True)

    def __init__(self, title: str = "Training", **kwargs: Any):
        super().__init__(**kwargs)
        self.title = title
        self._trainers: list[Run] = []
        self._names: list[str] = []
        self.job: TrainingJob | None = None
        self._lock = threading.Lock()
        self._last_push = 0.0
        self._timer: threading.Timer | None = None
        self.push_count = 0  # how many times state went to the browser (tests and benchmarks read it)
        self._snapshot_handle: Any = None
        self._displayed = False  # shown by display() or as a cell's value (containers are found by on_page)
        self._parent: Any = None
        self._thread_tokens: Any = None
        self._previous_sigint: Any = None
        self.on_msg(self._on_command)
        self.status = {"status": "created", "message": "no run yet", "title": title}
        self.snapshot_id = f"wb-snapshot-{self.model_id}"

    # ------------------------------------------------------------ public API

    @property
    def on_page(self) -> bool:
        """Whether a cell has shown this dashboard: by ``display()``, as a cell's value, or in a container (HBox)."""
        if self._displayed:
            return True
        return any(
            isinstance(widget, ipywidgets.Box) and self in widget.children for widget in list(_live_widgets().values())
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        self._displayed = True  # IPython asks this of display(dashboard) and of a cell's last value
        return super()._repr_mimebundle_(**kwargs)

    @property
    def trainer(self) -> Run | None:
        return self._trainers[-1] if self._trainers else None

    def attach(self, trainer: Run, name: str | None = None) -> TrainingDashboard:
        """Show ``trainer``'s run (overlaid on earlier ones) without starting it; the Start button starts it."""
        if self.job is not None and self.job.running:
            raise RuntimeError("A run is still going on this dashboard; stop it (or wait) before attaching another.")
        trainer.callbacks.add(DashboardCallback(self))
        self._trainers.append(trainer)
        self._names.append(name or f"run {len(self._trainers)}")
        self.can_start = True
        self._push()
        return self

    def run(self, trainer: Run, name: str | None = None, *, background: bool | None = None) -> None:
        """Show the dashboard, attach ``trainer`` and start it; return at once (background) or when it ends.

        A dashboard already on the page (displayed, a cell's value, or in an ``HBox``) is not shown
        again: the earlier view shows this run too. In the background the kernel stays free for
        other cells and the buttons work; a kernel interrupt (the stop button of the notebook) stops
        the run after a checkpoint. Returns nothing, so a cell ending in ``dashboard.run(trainer)``
        shows the dashboard once.
        """
        self.attach(trainer, name)
        self._show()
        self.start(background=background)

    def start(self, *, background: bool | None = None) -> None:
        """Start the attached run (what the Start button does)."""
        trainer = self.trainer
        if trainer is None:
            raise RuntimeError("Nothing to start: call dashboard.attach(trainer) or dashboard.run(trainer) first.")
        if self.job is not None and self.job.running:
            return
        self.can_start = False
        if background is None:
            background = not _on_colab()
        self._capture_output_parent()
        if background:
            self._install_interrupt_handler()
            self.job = trainer.start()
        else:
            self.notice = (
                "Colab shows no widget updates from a background thread, so this run trains in the "
                "foreground: the buttons wait until it ends; interrupt the cell to stop it "
                "(a checkpoint is saved first)."
            )
            self.job = None
            trainer.fit()

    def stop(self) -> None:
        if self.trainer is not None:
            self.trainer.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (Ctrl-C or a kernel interrupt stops it first); True if it ended."""
        return True if self.job is None else self.job.wait(timeout)

    # -------------------------------------------------------- button handling

    def _on_command(self, widget: Any, content: dict[str, Any], buffers: list[bytes]) -> None:
        command = content.get("command") if isinstance(content, dict) else None
        trainer = self.trainer
        if command == "start" and trainer is not None:
            self.start()
        elif trainer is None:
            return
        elif command == "pause":
            trainer.pause()
        elif command == "resume":
            trainer.resume_running()
        elif command == "stop":
            trainer.stop()
        elif command == "save":
            trainer.control.should_save = True
        self._changed(immediately=True)

    # ------------------------------------------------- throttled state pushes

    def _changed(self, immediately: bool = False) -> None:
        """Called from the training thread: push now if the last push is old enough, else once, a little later."""
        with self._lock:
            wait = MIN_INTERVAL_S - (time.monotonic() - self._last_push)
            if immediately or wait <= 0:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                self._push_locked()
            elif self._timer is None:
                self._timer = threading.Timer(wait, self._deferred_push)
                self._timer.daemon = True
                self._timer.start()

    def _deferred_push(self) -> None:
        with self._lock:
            self._timer = None
            self._push_locked()

    def _push(self) -> None:
        with self._lock:
            self._push_locked()

    def _push_locked(self) -> None:
        self._last_push = time.monotonic()
        self.push_count += 1
        runs = [self._run_payload(i, t) for i, t in enumerate(self._trainers)]
        status = self._status_payload()
        with self.hold_sync():  # one message for both traits
            self.runs = runs
            self.status = status

    def _run_payload(self, index: int, trainer: Run) -> dict[str, Any]:
        train = trainer.history.train
        keep = downsample([r["loss"] for r in train])
        payload = {
            "name": self._names[index],
            "color": _PALETTE[index % len(_PALETTE)],
            "steps": [train[i]["step"] for i in keep],
            "points": len(train),
        }
        for key, field in (
            ("loss", "loss"),
            ("smoothed", "smoothed_loss"),
            ("lr", "learning_rate"),
            ("tps", "tokens_per_second"),
        ):
            payload[key] = _round([train[i][field] for i in keep])
        # A loss of several parts (ELECTRA: generator + λ · discriminator) logs each one as "<part>_loss".
        payload["parts"] = [
            {"name": key.removesuffix("_loss"), "values": _round([train[i].get(key, math.nan) for i in keep])}
            for key in trainer.history.loss_parts()
        ]
        evals = trainer.history.eval
        payload["eval_steps"] = [r["step"] for r in evals]
        payload["eval_loss"] = _round([r.get("eval_loss", math.nan) for r in evals])
        return payload

    def _status_payload(self) -> dict[str, Any]:
        trainer = self.trainer
        if trainer is None:
            return {"status": "created", "message": "no run yet", "title": self.title}
        st = trainer.state.to_dict()
        keep = (
            "step",
            "max_steps",
            "epoch",
            "train_loss",
            "smoothed_loss",
            "learning_rate",
            "grad_norm",
            "tokens_per_second",
            "mfu",
            "mfu_basis",
            "elapsed_seconds",
            "eta_seconds",
            "status",
            "message",
            "precision",
            "device",
            "last_checkpoint",
            "tokens_seen",
        )
        payload = {k: finite_or_none(st[k]) for k in keep}
        if st["status"] == "running" and trainer.state.step == 0:
            payload["message"] = "starting…"
        payload["eval_loss"] = finite_or_none(trainer.state.eval_metrics.get("eval_loss", math.nan))
        payload["can_save"] = bool(trainer.config.output_dir)
        payload["title"] = f"{self.title}: {trainer.task.name} · {trainer.bundle.name}"
        return payload

    # ------------------------------------------------------ kernel plumbing

    def _show(self) -> None:
        """Display the dashboard unless a cell shows it already, and a slot for the static copy of the final curves.

        The slot is filled when the run ends and kept in the saved notebook for readers without a
        kernel (GitHub, nbviewer, a notebook opened later); where the live view renders, it hides it.
        """
        try:
            from IPython import get_ipython
            from IPython.display import HTML, display
        except ImportError:  # a plain script: nothing to display
            return
        if get_ipython() is None:
            return
        if not self.on_page:
            display(self)
            self._displayed = True
        self._snapshot_handle = display(HTML(self._snapshot_html("")), display_id=True)

    def _snapshot_html(self, svg: str) -> str:
        """The static copy as saved: the SVG in an element the live view can find by ``snapshot_id``."""
        return f'<div class="wb-static-snapshot {self.snapshot_id}">{svg}</div>'

    def _capture_output_parent(self) -> None:
        """Remember the cell that started the run, so prints from the thread land under it (ipykernel 7)."""
        try:
            from IPython import get_ipython
        except ImportError:
            return
        ip = get_ipython()
        self._parent = ip.get_parent() if ip is not None and hasattr(ip, "get_parent") else None

    def _thread_started(self) -> None:
        """In the training thread: tag its output with the starting cell's message."""
        try:
            from IPython import get_ipython
        except ImportError:
            return
        ip = get_ipython()
        if (
            ip is not None
            and self._parent is not None
            and hasattr(ip, "set_thread_parent")
            and threading.current_thread() is not threading.main_thread()
        ):
            self._thread_tokens = ip.set_thread_parent(self._parent)

    def _finished(self) -> None:
        self._push()
        if self._snapshot_handle is not None and self.trainer is not None:
            try:
                from IPython.display import HTML

                svg = curves_svg(
                    [(self._names[i], _PALETTE[i % len(_PALETTE)], t.history) for i, t in enumerate(self._trainers)],
                    title=self.trainer.state.message,
                )
                self._snapshot_handle.update(HTML(self._snapshot_html(svg)))
            except Exception:  # the snapshot is a courtesy; never let it mask the run's own outcome
                pass
        if self._thread_tokens is not None:
            from IPython import get_ipython

            get_ipython().reset_thread_parent(self._thread_tokens)
            self._thread_tokens = None

    def _install_interrupt_handler(self) -> None:
        """Make a kernel interrupt stop the run even while no cell runs.

        ipykernel restores ``kernel.saved_sigint_handler`` after each cell (a private attribute,
        pinned by a test); between cells an interrupt reaches that handler, which here stops
        the run (it saves first). During a cell, ``wait()`` catches KeyboardInterrupt instead.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            from IPython import get_ipython
        except ImportError:
            return
        ip = get_ipython()
        kernel = getattr(ip, "kernel", None)
        if kernel is None or not hasattr(kernel, "saved_sigint_handler"):
            return
        previous = kernel.saved_sigint_handler
        if getattr(previous, "_workbench_dashboard", None) is not None:
            previous = previous._workbench_previous
        dashboard = self

        def stop_training(signum: int, frame: Any) -> None:
            job = dashboard.job
            if job is not None and job.running:
                job.trainer.stop()
                return
            if callable(previous):
                previous(signum, frame)

        stop_training._workbench_dashboard = self  # type: ignore[attr-defined]
        stop_training._workbench_previous = previous  # type: ignore[attr-defined]
        kernel.saved_sigint_handler = stop_training


def _live_widgets() -> dict[str, ipywidgets.Widget]:
    """Every widget the kernel holds, by model id: ipywidgets' private registry (its public alias warns).

    A test pins the name, as ``saved_sigint_handler`` is pinned: a container found here holds the dashboard.
    """
    from ipywidgets.widgets import widget

    instances: dict[str, ipywidgets.Widget] = widget._instances
    return instances


def _on_colab() -> bool:
    return "google.colab" in sys.modules
