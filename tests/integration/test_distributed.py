"""The Trainer in two CPU processes (gloo), through Accelerate's launchers: notebook_launcher, `accelerate launch`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import torch

from workbench.errors import ConfigError, DataError, TrainingError
from workbench.training import Callback, DistributedTrainer, TrainConfig, Trainer
from workbench.training.checkpoint import list_checkpoints
from workbench.training.distributed import SharedFlags

# Several processes that wait for each other can hang where one dies; a test that passes takes under 30 s.
# Ten minutes turns a hang into a failure with every thread's stack instead of a stalled run.
pytestmark = pytest.mark.timeout(600)


def _config(out, **kw):
    base = {"progress": False, "block_size": 16, "log_every": 1, "precision": "fp32", "output_dir": str(out)}
    return TrainConfig(**{**base, **kw})


def _params(bundle):
    return torch.cat([p.detach().flatten() for p in bundle.model.parameters()])


def _children() -> set[int]:
    alive = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.fixture
def no_process_left():
    """After the test, none of the processes it started is still alive (a JupyterLab of the session may be)."""
    before = _children()

    def check(timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _children() - before:
                return True
            time.sleep(0.1)
        return False

    return check


class _WritesEachLog(Callback):
    """Runs inside every training process and leaves a file per process: proof that both logged."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def on_log(self, trainer, state, control, logs):
        with open(self.folder / f"rank-{trainer.rank}.txt", "a") as f:
            f.write(f"{state.step}\n")


def test_two_processes_follow_the_single_process_run_with_the_same_global_batch(
    tiny_texts, tmp_path, no_process_left, make_tiny
):
    corpus = tiny_texts * 4
    single_bundle = make_tiny("tiny-gpt", seed=1)
    single = Trainer(
        single_bundle,
        "causal-lm",
        corpus,
        eval_data=tiny_texts[:6],
        config=_config(tmp_path / "one", batch_size=8, max_steps=6, eval_every=3),
    ).fit()

    bundle = make_tiny("tiny-gpt", seed=1)
    run = DistributedTrainer(
        bundle,
        "causal-lm",
        corpus,
        eval_data=tiny_texts[:6],
        config=_config(tmp_path / "two", batch_size=4, max_steps=6, eval_every=3),
        num_processes=2,
    )
    history = run.fit()

    assert run.state.status == "finished" and run.state.step == 6
    assert history.losses() == pytest.approx(single.losses(), abs=1e-5)
    assert [e["eval_loss"] for e in history.eval] == pytest.approx([e["eval_loss"] for e in single.eval], abs=1e-5)
    # The tokens of both processes are counted, and the trained weights came back to this kernel.
    assert run.state.tokens_seen == 6 * 8 * 16
    torch.testing.assert_close(_params(bundle), _params(single_bundle), atol=1e-5, rtol=1e-4)
    assert no_process_left()


def test_the_dashboard_hears_the_main_process_only(tiny_texts, tmp_path, make_tiny):
    from workbench.ui import TrainingDashboard

    bundle = make_tiny("tiny-gpt", seed=1)
    run = DistributedTrainer(
        bundle,
        "causal-lm",
        tiny_texts * 2,
        config=_config(tmp_path, batch_size=4, max_steps=5),
        num_processes=2,
        worker_callbacks=[_WritesEachLog(tmp_path)],
    )
    dashboard = TrainingDashboard()
    dashboard.run(run)
    assert dashboard.wait(120)
    # Both processes logged every step ...
    for rank in (0, 1):
        assert (tmp_path / f"rank-{rank}.txt").read_text().split() == ["1", "2", "3", "4", "5"]
    # ... and the dashboard drew one curve from the main process's five logs, not ten.
    assert {rank for _, rank in run.events} == {0}
    assert dashboard.runs[-1]["steps"] == [1, 2, 3, 4, 5]
    assert dashboard.status["status"] == "finished" and dashboard.status["device"] == "cpu x 2 processes"


class _WritesItsPause(Callback):
    """Runs inside every training process: the step at which it paused, in a file per process."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def on_pause(self, trainer, state, control):
        (self.folder / f"paused-{trainer.rank}.txt").write_text(str(state.step))


class _Heard(Callback):
    """Runs in this kernel: an event for the first log at or after ``step``, and one for a pause."""

    def __init__(self, step):
        self.step, self.logged, self.paused = step, threading.Event(), threading.Event()

    def on_log(self, trainer, state, control, logs):
        if state.step >= self.step:
            self.logged.set()

    def on_pause(self, trainer, state, control):
        self.paused.set()


def _wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_stop_ends_both_processes_and_leaves_one_checkpoint_that_resumes_in_one_process(
    tiny_texts, tmp_path, no_process_left, make_tiny
):
    bundle = make_tiny("tiny-gpt", seed=1)
    heard = _Heard(step=5)
    run = DistributedTrainer(
        bundle,
        "causal-lm",
        tiny_texts * 2,
        config=_config(tmp_path, batch_size=4, max_steps=100_000, log_every=5),
        callbacks=[heard],
        num_processes=2,
        worker_callbacks=[_WritesItsPause(tmp_path)],
    )
    job = run.start()
    assert heard.logged.wait(60)
    run.pause()
    assert heard.paused.wait(60)
    paused_at = run.state.step
    assert run.state.status == "paused"
    # Paused means paused in every process, at the same step.
    files = [tmp_path / f"paused-{rank}.txt" for rank in (0, 1)]
    assert _wait_for(lambda: all(f.exists() and f.read_text() for f in files))
    assert [int(f.read_text()) for f in files] == [paused_at, paused_at]
    run.resume_running()
    job.stop(timeout=60)

    assert not job.running and run.state.status == "stopped"
    assert no_process_left()
    saved = list_checkpoints(tmp_path / "checkpoints")
    assert len(saved) == 1 and saved[0].name == f"step-{run.state.step:07d}"
    assert sorted(p.name for p in (saved[0] / "accelerate").iterdir()) == [
        "optimizer.bin",
        "random_states_0.pkl",
        "random_states_1.pkl",
    ]
    stopped_at = run.state.step

    # One process picks the run up where the two left it.
    fresh = make_tiny("tiny-gpt", seed=1)
    single = Trainer(
        fresh,
        "causal-lm",
        tiny_texts * 2,
        config=_config(tmp_path, batch_size=8, max_steps=stopped_at + 3, log_every=1),
    )
    single.resume_from(saved[0])
    torch.testing.assert_close(_params(fresh), _params(bundle))  # the kernel's bundle holds the final weights
    history = single.fit()
    assert single.state.status == "finished" and single.state.step == stopped_at + 3
    assert [r["step"] for r in history.train][-3:] == [stopped_at + 1, stopped_at + 2, stopped_at + 3]

    # And two processes again pick up the one's checkpoint, with the run's earlier records.
    again = DistributedTrainer(
        make_tiny("tiny-gpt", seed=1),
        "causal-lm",
        tiny_texts * 2,
        config=_config(tmp_path, batch_size=4, max_steps=stopped_at + 5),
        num_processes=2,
    )
    again.resume_from().fit()
    assert again.state.status == "finished" and again.state.step == stopped_at + 5
    steps = [r["step"] for r in again.history.train]
    assert steps[-2:] == [stopped_at + 4, stopped_at + 5]
    assert {stopped_at + 1, stopped_at + 2, stopped_at + 3} <= set(steps)  # the single run's, from its checkpoint


class _WritesItsWeights(Callback):
    def __init__(self, folder):
        self.folder = Path(folder)

    def on_train_end(self, trainer, state, control):
        torch.save(_params(trainer.bundle), self.folder / f"weights-{trainer.rank}.pt")


def test_masked_lm_processes_share_their_gradients_and_end_with_the_same_weights(tiny_texts, tmp_path, make_tiny):
    bundle = make_tiny("tiny-bert")
    run = DistributedTrainer(
        bundle,
        "masked-lm",
        tiny_texts * 2,
        config=_config(tmp_path, batch_size=4, max_steps=4),
        num_processes=2,
        worker_callbacks=[_WritesItsWeights(tmp_path)],
    )
    run.fit()
    first, second = (torch.load(tmp_path / f"weights-{r}.pt", weights_only=True) for r in (0, 1))
    assert not torch.equal(first, _params(make_tiny("tiny-bert")))  # it trained
    torch.testing.assert_close(first, second)  # each process drew other masks, yet all took the same steps
    torch.testing.assert_close(_params(bundle), first)


def test_a_classifier_in_two_processes_evaluates_like_one_process(tiny_texts, tmp_path, make_tiny):
    from workbench.data import load_labelled

    data = load_labelled([(t, "animal" if ("cat" in t or "dog" in t) else "other") for t in tiny_texts])
    results = []
    for processes, batch in ((1, 8), (2, 4)):
        bundle = make_tiny("tiny-bert", kind="classifier", label_names=data.label_names, seed=3)
        for module in bundle.model.modules():  # no dropout: the two runs must take the same steps
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        config = _config(tmp_path / str(processes), batch_size=batch, max_steps=4, max_length=32)
        if processes == 1:
            history = Trainer(bundle, "classify", data, eval_data=data, config=config).fit()
        else:
            history = DistributedTrainer(bundle, "classify", data, eval_data=data, config=config, num_processes=2).fit()
        results.append(history)
    one, two = results
    assert two.losses() == pytest.approx(one.losses(), abs=1e-5)
    for key in ("eval_loss", "eval_accuracy", "eval_macro_f1"):
        assert two.eval[-1][key] == pytest.approx(one.eval[-1][key], abs=1e-5)
    assert two.eval[-1]["eval_confusion_matrix"] == one.eval[-1]["eval_confusion_matrix"]
    assert sum(map(sum, two.eval[-1]["eval_confusion_matrix"])) == len(tiny_texts)  # every example, once


class _FailsInProcessOne(Callback):
    def on_step_end(self, trainer, state, control):
        if trainer.rank == 1 and state.step == 2:
            raise RuntimeError("the disk of process 1 went away")


def test_a_failing_process_ends_the_run_with_one_sentence(tiny_texts, tmp_path, no_process_left, make_tiny):
    run = DistributedTrainer(
        make_tiny("tiny-gpt", seed=1),
        "causal-lm",
        tiny_texts * 2,
        config=_config(tmp_path, batch_size=4, max_steps=50),
        num_processes=2,
        worker_callbacks=[_FailsInProcessOne()],
    )
    with pytest.raises(TrainingError, match="the disk of process 1 went away"):
        run.fit()
    assert run.state.status == "failed"
    assert no_process_left()


def test_bad_launches_are_refused_before_any_process_starts(tiny_texts, tmp_path, make_tiny):
    bundle = make_tiny("tiny-gpt", seed=1)
    with pytest.raises(ConfigError, match="needs output_dir"):
        DistributedTrainer(bundle, "causal-lm", tiny_texts, config=TrainConfig(progress=False))
    with pytest.raises(DataError, match="per process x 2 processes is larger"):
        DistributedTrainer(bundle, "causal-lm", tiny_texts, config=_config(tmp_path, batch_size=32), num_processes=2)
    with pytest.raises(ConfigError, match="num_processes must be a positive integer"):
        DistributedTrainer(bundle, "causal-lm", tiny_texts, config=_config(tmp_path), num_processes=0)
    with pytest.raises(TrainingError, match="does not fit"):
        DistributedTrainer(bundle, "masked-lm", tiny_texts, config=_config(tmp_path), num_processes=2)


def test_shared_flags_hand_one_shot_requests_to_the_main_process_once():
    import multiprocessing

    from workbench.training.events import Control

    flags = SharedFlags(multiprocessing.get_context("fork"))
    main, other = Control(), Control()
    flags.request("save")
    flags.request("pause", True)
    flags.poll(main, main=True)
    flags.poll(other, main=False)
    assert main.should_save and not other.should_save  # the agreement hands it to the others
    assert main.should_pause and other.should_pause
    main.should_save = False
    flags.poll(main, main=True)
    assert not main.should_save  # taken once
    flags.request("stop")
    flags.poll(other, main=False)
    assert other.should_stop


def _launch_command(tmp_path, tiny_texts, *flags):
    """`accelerate launch` of `workbench pretrain` in two CPU processes (gloo), on a little corpus."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(tiny_texts * 4))  # one document per paragraph
    accelerate = Path(sys.executable).with_name("accelerate")
    return [
        str(accelerate),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        "-m",
        "workbench",
        "pretrain",
        "--model",
        "tiny-gpt",
        "--task",
        "causal-lm",
        "--data",
        str(corpus),
        "--eval-fraction",
        "0.25",
        "--batch-size",
        "4",
        "--block-size",
        "16",
        "--progress",
        "false",
        "--precision",
        "fp32",
        "--output-dir",
        str(tmp_path / "run"),
        *flags,
    ]


_ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_accelerate_launch_runs_the_cli_in_two_processes(tiny_texts, tmp_path):
    for _attempt in range(2):  # a free port can be taken between choosing it and binding it: choose again
        done = subprocess.run(
            _launch_command(tmp_path, tiny_texts, "--max-steps", "4"),
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
            env=_ENV,
        )
        if done.returncode == 0 or "address already in use" not in done.stderr.lower():
            break
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1  # only the main process reports
    assert reports[0]["status"] == "finished" and reports[0]["processes"] == 2 and reports[0]["step"] == 4
    checkpoint = Path(reports[0]["checkpoint"])
    assert (checkpoint / "accelerate" / "random_states_1.pkl").exists()
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) >= 1


def test_ctrl_c_under_accelerate_launch_stops_both_processes_at_one_step_with_a_checkpoint(tiny_texts, tmp_path):
    import signal

    command = _launch_command(tmp_path, tiny_texts, "--max-steps", "1000000", "--log-every", "1")
    # A terminal sends Ctrl-C to the whole process group: the launcher and both training processes.
    launched = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_ENV, start_new_session=True
    )
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.2)
    os.killpg(launched.pid, signal.SIGINT)
    out, err = launched.communicate(timeout=120)
    reports = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(reports) == 1, err[-3000:]
    assert reports[0]["status"] == "stopped"
    saved = list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [p.name for p in saved] == [f"step-{reports[0]['step']:07d}"]
    assert (saved[0] / "accelerate" / "random_states_0.pkl").exists()
    assert (saved[0] / "accelerate" / "random_states_1.pkl").exists()


def test_a_notebook_cell_launches_two_processes_with_a_live_dashboard_and_the_kernel_stays_free(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    cells = [
        f"import os, sys\nos.environ['HF_HUB_OFFLINE'] = '1'\nsys.path.insert(0, {str(Path(__file__).parents[1])!r})\n"
        "from conftest import TINY_SIZES, TINY_TEXTS\n"
        "from workbench import load_model, TrainConfig, Trainer, DistributedTrainer\n"
        "from workbench.ui import TrainingDashboard",
        # An earlier single-process run leaves Accelerate's state set; the launch must not refuse.
        "b = load_model('tiny-gpt', corpus=TINY_TEXTS, **TINY_SIZES)\n"
        "Trainer(b, 'causal-lm', TINY_TEXTS, config=TrainConfig(max_steps=2, batch_size=4, block_size=16, "
        "progress=False)).fit();",
        "run = DistributedTrainer(b, 'causal-lm', TINY_TEXTS * 4, config=TrainConfig(max_steps=30, batch_size=4, "
        f"block_size=16, log_every=2, progress=False, output_dir={str(tmp_path / 'run')!r}), num_processes=2)\n"
        "d = TrainingDashboard()\nd.run(run)",
        "print('while training:', run.state.status)",
        "d.wait(120)\nprint('after:', run.state.message, d.runs[-1]['points'], sorted({r for _, r in run.events}))",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=240, kernel_name="python3").execute()
    text = [
        "".join(o.get("text", "") for o in c.get("outputs", []) if o.get("output_type") == "stream") for c in nb.cells
    ]
    assert "while training: running" in text[3]  # the cell ran while the processes trained
    assert "after: finished at step 30 15 [0]" in text[4]
    assert "Failed to register signal handlers" not in "".join(text)
    assert list_checkpoints(tmp_path / "run" / "checkpoints")


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_probe_recorder_follows_the_run_from_the_main_process(tmp_path, make_tiny):
    from workbench.explain import ProbeRecorder

    texts = ["The cat sat on the mat and looked at the dog.", "A dog ran in the park while the cat slept."] * 8
    bundle = make_tiny("tiny-bert", corpus=texts)
    recorder = ProbeRecorder([("The cat sat on the [MASK].", "mat")], every=2)
    heard = []
    recorder.listeners.append(heard.append)  # what a ProbeTimeline does
    run = DistributedTrainer(
        bundle,
        "masked-lm",
        texts,
        config=_config(tmp_path, batch_size=4, max_steps=6),
        callbacks=[recorder],
        num_processes=2,
    )
    history = run.fit()
    assert [r["step"] for r in recorder.timeline] == [2, 4, 6] == [r["step"] for r in heard]
    assert [r["step"] for r in history.probes] == [2, 4, 6]
    assert recorder.timeline[0]["probes"][0]["expected"] == "mat"
    saved = json.loads((Path(run.state.last_checkpoint) / "trainer_state.json").read_text())
    assert [r["step"] for r in saved["history"]["records"] if r["kind"] == "probe"] == [2, 4, 6]
