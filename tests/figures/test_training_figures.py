"""Training figures: a run's curves from its history or folder, several runs compared, the probe timeline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.errors import TrainingError
from workbench.figures import FigureError, compare_runs, plot
from workbench.figures.training import moving_average, read_metrics
from workbench.training import TrainConfig, Trainer, TrainingHistory

QUIET = {"progress": False, "block_size": 16, "batch_size": 4, "log_every": 1, "precision": "fp32"}


@pytest.fixture(scope="module")
def trained(make_tiny, tiny_texts_module, tmp_path_factory):
    """A real six-step causal-LM run with an evaluation every three steps and a probe recorder, in a folder."""
    from workbench.explain import ProbeRecorder

    folder = tmp_path_factory.mktemp("runs") / "first-run"
    recorder = ProbeRecorder([("The cat sat on the", " mat"), "To be, or not to"], every=2, at_start=True)
    config = TrainConfig(**QUIET, max_steps=6, eval_every=3, learning_rate=3e-3, output_dir=str(folder))
    trainer = Trainer(
        make_tiny("tiny-gpt"),
        "causal-lm",
        tiny_texts_module,
        eval_data=tiny_texts_module[:4],
        config=config,
        callbacks=[recorder],
    )
    trainer.fit()
    return trainer, folder, recorder


@pytest.fixture(scope="module")
def tiny_texts_module():
    from tests.conftest import TINY_TEXTS

    return list(TINY_TEXTS)


def _history(losses, *, evals=(), lr=1e-3, tokens_per_step=100):
    records = [
        {
            "kind": "train",
            "step": s,
            "loss": loss,
            "learning_rate": lr * s,
            "tokens_per_second": 10.0 * s,
            "tokens_seen": tokens_per_step * s,
            "elapsed_seconds": 0.5 * s,
        }
        for s, loss in enumerate(losses, start=1)
    ]
    records += [{"kind": "eval", "step": s, "eval_loss": v} for s, v in evals]
    return TrainingHistory(records)


def _trace(fig, name):
    return next(t for t in fig.data if t.name == name)


def test_a_run_folder_draws_the_losses_learning_rate_and_throughput_the_trainer_wrote(trained):
    trainer, folder, _ = trained
    history = trainer.history
    fig = plot(str(folder), smooth=0)
    np.testing.assert_allclose(_trace(fig, "training loss").y, history.losses(), rtol=1e-6)
    np.testing.assert_array_equal(_trace(fig, "training loss").x, [r["step"] for r in history.train])
    np.testing.assert_allclose(_trace(fig, "evaluation loss").y, [r["eval_loss"] for r in history.eval], rtol=1e-6)
    np.testing.assert_array_equal(_trace(fig, "evaluation loss").x, [3, 6])
    np.testing.assert_allclose(_trace(fig, "learning rate").y, [r["learning_rate"] for r in history.train], rtol=1e-6)
    np.testing.assert_allclose(_trace(fig, "tokens / s").y, [r["tokens_per_second"] for r in history.train], rtol=1e-6)
    assert "first-run" in fig.layout.title.text
    assert fig.layout.xaxis3.title.text == "step"
    fig.to_json()


def test_a_history_a_trainer_and_its_folder_give_the_same_curves(trained):
    trainer, folder, _ = trained
    from_folder, from_history, from_trainer = plot(folder), plot(trainer.history), plot(trainer)
    for fig in (from_history, from_trainer):
        for a, b in zip(from_folder.data, fig.data, strict=True):
            np.testing.assert_allclose(a.y, b.y)


def test_smoothing_draws_the_moving_average_over_the_faint_raw_loss():
    history = _history([4.0, 2.0, 3.0, 1.0])
    fig = plot(history, smooth=0.5)
    raw, averaged = _trace(fig, "training loss (raw)"), _trace(fig, "training loss")
    np.testing.assert_allclose(raw.y, [4.0, 2.0, 3.0, 1.0])
    np.testing.assert_allclose(averaged.y, [4.0, 3.0, 3.0, 2.0])  # m = 0.5 m + 0.5 v
    assert raw.opacity < 1 and averaged.opacity is None


def test_the_moving_average_keeps_its_value_over_a_missing_loss():
    np.testing.assert_allclose(moving_average(np.array([2.0, np.nan, 4.0]), 0.5), [2.0, 2.0, 3.0])


def test_tokens_on_x_places_evaluations_at_the_tokens_seen_by_their_step():
    fig = plot(_history([3.0, 2.0, 1.0, 0.5], evals=[(2, 2.5), (4, 1.5)]), x="tokens", smooth=0)
    np.testing.assert_allclose(_trace(fig, "training loss").x, [100, 200, 300, 400])
    np.testing.assert_allclose(_trace(fig, "evaluation loss").x, [200, 400])
    np.testing.assert_allclose(_trace(fig, "evaluation loss").customdata[:, 0], [2, 4])  # the step, on hover
    assert fig.layout.xaxis3.title.text == "tokens seen"
    by_time = plot(_history([3.0, 2.0], evals=[(2, 2.5)]), x="time", smooth=0)
    np.testing.assert_allclose(_trace(by_time, "learning rate").x, [0.5, 1.0])
    np.testing.assert_allclose(_trace(by_time, "evaluation loss").x, [1.0])


def test_a_resumed_run_folder_keeps_the_records_written_after_the_resume(tmp_path):
    lines = [
        {"kind": "train", "step": 1, "loss": 5.0},
        {"kind": "train", "step": 2, "loss": 4.0},
        {"kind": "eval", "step": 2, "eval_loss": 4.5},
        {"kind": "train", "step": 3, "loss": 3.0},  # the run crashed here and resumed from step 2
        {"kind": "train", "step": 3, "loss": 2.5},
        {"kind": "train", "step": 4, "loss": 2.0},
    ]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + '\n{"kind": "tr')
    history = read_metrics(tmp_path)  # the last line, cut short by the crash, is left out
    assert history.losses() == [5.0, 4.0, 2.5, 2.0]
    assert [r["eval_loss"] for r in history.eval] == [4.5]


def test_compare_runs_gives_each_run_one_colour_and_one_legend_group_in_every_panel(trained):
    trainer, folder, _ = trained
    other = _history([6.0, 5.0, 4.0], evals=[(3, 4.5)])
    fig = compare_runs([folder, other], names=None)
    names = {t.name for t in fig.data}
    assert names == {"first-run", "run 2"}
    for name in names:
        traces = [t for t in fig.data if t.name == name]
        assert len({t.line.color for t in traces}) == 1
        assert len({t.legendgroup for t in traces}) == 1
        assert sum(bool(t.showlegend is not False) for t in traces) == 1  # one legend entry hides all its panels
    assert {t.yaxis for t in fig.data if t.name == "run 2"} == {"y", "y2", "y3", "y4"}
    run2 = [t for t in fig.data if t.name == "run 2"]
    np.testing.assert_allclose(run2[0].y, [6.0, 5.0, 4.0])
    np.testing.assert_allclose(run2[1].y, [4.5])
    np.testing.assert_allclose(_trace(fig, "first-run").y, trainer.history.losses(), rtol=1e-6)
    assert fig.layout.legend.groupclick == "togglegroup"


def test_compare_runs_escapes_run_names_and_numbers_repeated_ones():
    fig = compare_runs([_history([1.0]), _history([2.0])], names=["<b>a</b>", "<b>a</b>"], metrics=("loss",))
    assert [t.name for t in fig.data] == ["&lt;b&gt;a&lt;/b&gt;", "&lt;b&gt;a&lt;/b&gt; (2)"]


def test_compare_runs_takes_a_trainer_and_names_it_by_its_output_folder(trained):
    trainer, _, _ = trained
    fig = compare_runs([trainer, _history([2.0, 1.0])], metrics=("loss",))
    assert fig.data[0].name == "first-run"


@pytest.mark.parametrize(
    ("call", "sentence"),
    [
        (lambda h: compare_runs([]), "compare_runs got an empty list"),
        (compare_runs, "compare_runs takes a list of runs, got a TrainingHistory"),
        (lambda h: compare_runs([h, h], names=["one"]), "got 2 runs but 1 names; give one name per run"),
        (lambda h: compare_runs([h, 3]), "Run 2 is a int, not a run"),
        (lambda h: compare_runs([h], metrics=("eval_accuracy",)), "No run logged 'eval_accuracy'; these runs logged"),
        (lambda h: compare_runs([h], x="epoch"), "x='epoch' is not an axis of a run"),
        (lambda h: plot(h, smooth=1.0), "smooth=1.0 is not a smoothing weight"),
        (lambda h: plot(TrainingHistory()), "holds no training records yet"),
    ],
)
def test_bad_input_gets_one_sentence(call, sentence):
    with pytest.raises(FigureError, match=sentence):
        call(_history([3.0, 2.0]))


def test_a_folder_without_metrics_says_where_the_trainer_writes_them(tmp_path):
    with pytest.raises(TrainingError, match=rf"The run folder {tmp_path} holds no metrics.jsonl; give the output_dir"):
        plot(tmp_path)
    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(FigureError, match="holds no training records yet"):
        plot(tmp_path)


def test_the_probe_timeline_draws_each_probe_with_its_top_tokens_on_hover(trained):
    _, _, recorder = trained
    timeline = recorder.timeline
    assert [r["step"] for r in timeline] == [0, 2, 3, 4, 6]
    fig = plot(recorder)
    assert len(fig.data) == 2
    expected, free = fig.data
    np.testing.assert_array_equal(expected.x, [0, 2, 3, 4, 6])
    np.testing.assert_allclose(expected.y, [r["probes"][0]["probability"] for r in timeline], rtol=1e-6)
    np.testing.assert_allclose(free.y, [r["probes"][1]["top"][0][1] for r in timeline], rtol=1e-6)
    first_top = timeline[0]["probes"][0]["top"][0][0]
    assert repr(first_top).replace("&", "&amp;").replace("<", "&lt;") in expected.customdata[0][2]
    assert "→ ' mat'" in expected.name and "(top token)" in free.name
    ranks = plot(recorder, value="rank")
    assert len(ranks.data) == 1
    np.testing.assert_allclose(ranks.data[0].y, [r["probes"][0]["rank"] + 1 for r in timeline])


def test_a_probe_timeline_escapes_markup_in_sentences_and_tokens():
    from workbench.explain import ProbeRecorder

    recorder = ProbeRecorder(["<b>bold</b> is"])
    recorder.add(
        {
            "kind": "probe",
            "step": 1,
            "probes": [
                {"text": "<b>bold</b> is", "expected": None, "top": [["<i>", 0.5]], "rank": None, "probability": None}
            ],
        }
    )
    trace = plot(recorder).data[0]
    assert trace.name.startswith("&lt;b&gt;bold&lt;/b&gt;")
    assert "&lt;i&gt;" in trace.customdata[0][2] and "<i>" not in trace.customdata[0][2]
    with pytest.raises(FigureError, match="No probe of this recorder expects a token"):
        plot(recorder, value="rank")
    with pytest.raises(FigureError, match="This ProbeRecorder has no records yet"):
        plot(ProbeRecorder(["a b"]))


def test_each_part_of_a_loss_of_several_parts_is_drawn_dashed_beside_the_loss():
    records = [
        {"kind": "train", "step": s, "loss": 9.0 - s, "generator_loss": 4.0 - s / 5, "discriminator_loss": 0.1 * s}
        for s in range(1, 6)
    ]
    fig = plot(TrainingHistory(records))
    parts = {t.name: t for t in fig.data if t.line.dash == "dash"}
    assert sorted(parts) == ["discriminator loss", "generator loss"]
    assert np.allclose(parts["generator loss"].y, [r["generator_loss"] for r in records])
    assert np.allclose(parts["discriminator loss"].y, [r["discriminator_loss"] for r in records])
