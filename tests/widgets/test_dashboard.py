"""The training dashboard's state, with no kernel and no browser (the widget's comm is a stand-in)."""

from __future__ import annotations

import re
import threading
import time
from types import SimpleNamespace

import pytest

from workbench.training import Callback, TrainConfig, Trainer, TrainingHistory
from workbench.training.events import Control, TrainState
from workbench.ui import TrainingDashboard
from workbench.ui.dashboard import MAX_POINTS, DashboardCallback, downsample
from workbench.ui.snapshot import curves_svg


@pytest.fixture
def trainer(tiny_texts, tmp_path, make_tiny):
    bundle = make_tiny("tiny-bert")
    config = TrainConfig(
        max_steps=12, batch_size=4, block_size=16, log_every=1, progress=False, output_dir=str(tmp_path), eval_every=6
    )
    return Trainer(bundle, "masked-lm", tiny_texts, eval_data=tiny_texts[:4], config=config)


def test_state_after_a_short_run_holds_every_logged_step(trainer):
    dashboard = TrainingDashboard()
    dashboard.run(trainer)
    assert dashboard.wait(60)
    run = dashboard.runs[-1]
    assert run["steps"] == list(range(1, 13)) and run["points"] == 12
    assert len(run["loss"]) == len(run["smoothed"]) == len(run["lr"]) == 12
    assert run["eval_steps"] == [6, 12]
    assert dashboard.status["status"] == "finished" and dashboard.status["step"] == 12


class _StepReached(Callback):
    def __init__(self, step):
        self.step, self.event = step, threading.Event()

    def on_step_end(self, trainer, state, control):
        if state.step >= self.step:
            self.event.set()


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_the_stop_button_stops_the_run_and_a_checkpoint_exists(tiny_texts, tmp_path, make_tiny):
    bundle = make_tiny("tiny-bert")
    config = TrainConfig(max_steps=100_000, batch_size=4, block_size=16, progress=False, output_dir=str(tmp_path))
    third = _StepReached(3)
    trainer = Trainer(bundle, "masked-lm", tiny_texts, config=config, callbacks=[third])
    dashboard = TrainingDashboard()
    dashboard.run(trainer)
    assert third.event.wait(30)
    dashboard._on_command(dashboard, {"command": "stop"}, [])
    assert dashboard.wait(30)
    assert dashboard.status["status"] == "stopped"
    assert (tmp_path / "checkpoints" / f"step-{trainer.state.step:07d}").is_dir()


def test_pause_and_resume_buttons_reach_the_trainer(trainer):
    dashboard = TrainingDashboard().attach(trainer)
    dashboard._on_command(dashboard, {"command": "pause"}, [])
    assert trainer.control.should_pause
    dashboard._on_command(dashboard, {"command": "resume"}, [])
    assert not trainer.control.should_pause
    dashboard._on_command(dashboard, {"command": "save"}, [])
    assert trainer.control.should_save


def test_the_start_button_starts_an_attached_run(trainer):
    dashboard = TrainingDashboard().attach(trainer)
    assert dashboard.can_start
    dashboard._on_command(dashboard, {"command": "start"}, [])
    assert dashboard.wait(60)
    assert trainer.state.status == "finished" and not dashboard.can_start


def test_runs_are_overlaid_with_their_own_colours(tiny_texts, tmp_path, make_tiny):
    dashboard = TrainingDashboard()
    for seed in (1, 2):
        bundle = make_tiny("tiny-bert", seed=seed)
        config = TrainConfig(max_steps=3, batch_size=4, block_size=16, log_every=1, progress=False)
        dashboard.run(Trainer(bundle, "masked-lm", tiny_texts, config=config), name=f"seed {seed}")
        assert dashboard.wait(60)
    assert [r["name"] for r in dashboard.runs] == ["seed 1", "seed 2"]
    assert dashboard.runs[0]["color"] != dashboard.runs[1]["color"]


def test_the_throttle_holds_at_a_thousand_steps_a_second():
    history = TrainingHistory()
    fake = SimpleNamespace(
        history=history,
        state=TrainState(max_steps=10**6, status="running"),
        config=SimpleNamespace(output_dir=None),
        task=SimpleNamespace(name="masked-lm"),
        bundle=SimpleNamespace(name="fake"),
        callbacks=SimpleNamespace(add=lambda cb: None),
    )
    dashboard = TrainingDashboard()
    dashboard._trainers.append(fake)
    dashboard._names.append("fake")
    callback = DashboardCallback(dashboard)
    before = dashboard.push_count
    start = time.monotonic()
    step = 0
    while time.monotonic() - start < 2.0:
        step += 1
        record = {
            "kind": "train",
            "step": step,
            "loss": 1.0 / step,
            "smoothed_loss": 1.0,
            "learning_rate": 1e-3,
            "tokens_per_second": 1.0,
        }
        history.records.append(record)
        fake.state.step = step
        callback.on_log(fake, fake.state, Control(), record)
        time.sleep(0.001)
    elapsed = time.monotonic() - start
    assert _wait_for(lambda: dashboard.status["step"] == step)  # the last state still arrives, deferred
    pushes = dashboard.push_count - before
    assert step / elapsed > 500  # the loop really ran fast
    assert pushes <= elapsed / 0.2 + 2


def test_downsampling_keeps_the_ends_and_the_extremes():
    values = [1.0] * 5000
    values[1234] = 9.0
    values[4321] = -3.0
    keep = downsample(values, max_points=300)
    assert len(keep) <= 310 and keep[0] == 0 and keep[-1] == 4999
    assert 1234 in keep and 4321 in keep
    assert downsample(values[:MAX_POINTS]) == list(range(MAX_POINTS))


def test_the_static_snapshot_escapes_run_names():
    history = TrainingHistory(
        [
            {"kind": "train", "step": 1, "loss": 2.0, "smoothed_loss": 2.0},
            {"kind": "train", "step": 2, "loss": 1.5, "smoothed_loss": 1.8},
        ]
    )
    svg = curves_svg([("<script>alert(1)</script>", "#000", history)], title="<b>x</b>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "<b>" not in svg
    assert len(svg) < 5000


def test_saved_state_of_a_long_run_stays_small():
    history = TrainingHistory(
        [
            {
                "kind": "train",
                "step": i,
                "loss": 1.0 / i,
                "smoothed_loss": 1.0 / i,
                "learning_rate": 1e-3,
                "tokens_per_second": 1000.0,
            }
            for i in range(1, 20001)
        ]
    )
    fake = SimpleNamespace(
        history=history,
        state=TrainState(max_steps=20000, status="finished"),
        config=SimpleNamespace(output_dir=None),
        task=SimpleNamespace(name="masked-lm"),
        bundle=SimpleNamespace(name="fake"),
    )
    dashboard = TrainingDashboard()
    dashboard._trainers.append(fake)
    dashboard._names.append("fake")
    dashboard._push()
    import json

    state_bytes = len(json.dumps(dashboard.get_state()["runs"]))
    assert state_bytes < 100_000


def test_the_dashboard_module_pins_ipykernels_private_sigint_attribute():
    from ipykernel.kernelbase import Kernel

    assert "saved_sigint_handler" in Kernel.pre_handler_hook.__code__.co_names
    assert "saved_sigint_handler" in Kernel.post_handler_hook.__code__.co_names


def test_foreground_mode_trains_in_the_cell_and_says_why(trainer):
    dashboard = TrainingDashboard()
    dashboard.run(trainer, background=False)  # what Colab gets: no widget updates from threads there
    assert trainer.state.status == "finished" and dashboard.job is None
    assert "foreground" in dashboard.notice and dashboard.runs[-1]["points"] == 12


def test_attaching_a_second_run_while_one_trains_is_refused(tiny_texts, trainer, make_tiny):
    dashboard = TrainingDashboard()
    bundle = make_tiny("tiny-bert")
    endless = Trainer(
        bundle,
        "masked-lm",
        tiny_texts,
        config=TrainConfig(max_steps=100_000, batch_size=4, block_size=16, progress=False),
    )
    dashboard.run(endless)
    try:
        with pytest.raises(RuntimeError, match="still going"):
            dashboard.attach(trainer)
    finally:
        dashboard.stop()
        assert dashboard.wait(60)


def test_the_saved_snapshot_escapes_run_names_and_titles():
    from workbench.training.loop import TrainingHistory
    from workbench.ui.snapshot import curves_svg

    history = TrainingHistory(
        [
            {"kind": "train", "step": 1, "loss": 2.0, "smoothed_loss": 2.0},
            {"kind": "train", "step": 2, "loss": 1.5, "smoothed_loss": 1.8},
        ]
    )
    svg = curves_svg([("<script>alert(1)</script>", "#0969da", history)], title="<img src=x onerror=alert(2)>")
    assert "<script>" not in svg and "<img" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg and "&lt;img src=x onerror=alert(2)&gt;" in svg


# ------------------------------------------------- what a notebook cell shows (display, snapshot)


class _OutputArea:
    """Stands in for a notebook's outputs: what ``display()`` put there, updated in place through a display id."""

    def __init__(self):
        self.outputs = []

    def display(self, obj, *, display_id=None, **kwargs):
        self.outputs.append(obj)
        if not display_id:
            return None
        index = len(self.outputs) - 1
        return SimpleNamespace(update=lambda new: self.outputs.__setitem__(index, new))

    def count(self, widget):
        return sum(1 for shown in self.outputs if shown is widget)

    def html(self):
        return [shown.data for shown in self.outputs if hasattr(shown, "data")]


@pytest.fixture
def notebook(monkeypatch):
    """A kernel that displays into an ``_OutputArea`` (no IPython kernel, no front end)."""
    import IPython
    import IPython.display

    area = _OutputArea()
    monkeypatch.setattr(IPython, "get_ipython", SimpleNamespace)  # a shell, not None
    monkeypatch.setattr(IPython.display, "display", area.display)
    return area


def _short_trainer(tiny_texts, make_tiny, seed=0):
    config = TrainConfig(max_steps=3, batch_size=4, block_size=16, log_every=1, progress=False)
    return Trainer(make_tiny("tiny-bert", seed=seed), "masked-lm", tiny_texts, config=config)


def test_a_second_run_on_the_same_dashboard_does_not_show_it_again(notebook, tiny_texts, make_tiny):
    dashboard = TrainingDashboard()
    dashboard.run(_short_trainer(tiny_texts, make_tiny, 1), background=False)
    dashboard.run(_short_trainer(tiny_texts, make_tiny, 2), background=False)
    assert notebook.count(dashboard) == 1
    assert len(notebook.html()) == 2  # each run's cell keeps its own static copy of the curves


def test_a_dashboard_already_in_an_hbox_is_not_shown_again_by_run(notebook, tiny_texts, make_tiny):
    import ipywidgets

    dashboard = TrainingDashboard()
    box = ipywidgets.HBox([ipywidgets.Label("probes"), dashboard])  # a cell's value, as in 07_watch_it_learn
    assert dashboard.on_page
    dashboard.run(_short_trainer(tiny_texts, make_tiny), background=False)
    assert notebook.count(dashboard) == 0 and notebook.count(box) == 0
    assert len(notebook.html()) == 1


def test_a_dashboard_shown_as_a_cells_value_is_not_shown_again_by_run(notebook, tiny_texts, make_tiny):
    dashboard = TrainingDashboard()
    assert not dashboard.on_page
    data, _ = dashboard._repr_mimebundle_()  # what IPython asks of a cell's last value, or of display()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == dashboard.model_id
    assert dashboard.on_page
    dashboard.run(_short_trainer(tiny_texts, make_tiny), background=False)
    assert notebook.count(dashboard) == 0


def test_the_saved_static_copy_carries_the_id_by_which_the_live_view_hides_it(notebook, tiny_texts, make_tiny):
    dashboard = TrainingDashboard()
    dashboard.run(_short_trainer(tiny_texts, make_tiny), background=False)
    (snapshot,) = notebook.html()
    assert snapshot.startswith(f'<div class="wb-static-snapshot {dashboard.snapshot_id}"><svg')
    assert "finished at step 3" in snapshot
    # The live view reads the id from its state and hides elements of that class; a CSS class name, as the
    # view requires (it ignores anything else).
    assert dashboard.get_state()["snapshot_id"] == dashboard.snapshot_id
    assert re.fullmatch(r"[A-Za-z][\w-]*", dashboard.snapshot_id)
    assert TrainingDashboard().snapshot_id != dashboard.snapshot_id


def test_the_dashboard_module_pins_ipywidgets_private_widget_registry():
    import ipywidgets

    from workbench.ui.dashboard import _live_widgets

    box = ipywidgets.HBox([])
    model_id = box.model_id
    assert _live_widgets()[model_id] is box
    box.close()
    assert model_id not in _live_widgets()


def test_a_loss_of_several_parts_sends_each_part_to_the_chart():
    records = [
        {
            "kind": "train",
            "step": s,
            "loss": 10.0 - s,
            "smoothed_loss": 10.0 - s,
            "learning_rate": 1e-3,
            "tokens_per_second": 100.0,
            "generator_loss": 5.0 - s / 10,
            "discriminator_loss": 0.1 * s,
        }
        for s in range(1, 6)
    ]
    dashboard = TrainingDashboard()
    dashboard._names = ["electra"]
    payload = dashboard._run_payload(0, SimpleNamespace(history=TrainingHistory(records)))
    parts = {part["name"]: part["values"] for part in payload["parts"]}
    assert parts == {
        "generator": [r["generator_loss"] for r in records],
        "discriminator": [pytest.approx(r["discriminator_loss"]) for r in records],
    }
    assert dashboard._run_payload(0, SimpleNamespace(history=TrainingHistory(records[:0])))["parts"] == []
