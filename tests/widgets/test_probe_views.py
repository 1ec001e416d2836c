"""The probe views' state, with no kernel and no browser."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.errors import ProbeError
from workbench.explain import ProbeRecorder
from workbench.explain.lens import logit_lens
from workbench.explain.tuned_lens import TunedLens
from workbench.training import TrainConfig, Trainer
from workbench.ui import MaskProbe, ProbeTimeline


@pytest.fixture(scope="module")
def run(tmp_path_factory, make_tiny):
    """A tiny masked LM trained for 6 steps with a checkpoint every 3, and a probe recorder."""
    from tests.conftest import TINY_TEXTS

    folder = tmp_path_factory.mktemp("run")
    bundle = make_tiny("tiny-bert")
    recorder = ProbeRecorder([("the cat sat on the [MASK]", "mat")], every=3)
    config = TrainConfig(
        max_steps=6,
        batch_size=4,
        block_size=16,
        save_every=3,
        keep_last=5,
        progress=False,
        output_dir=str(folder),
        learning_rate=5e-3,
    )
    Trainer(bundle, "masked-lm", TINY_TEXTS, config=config, callbacks=[recorder]).fit()
    return folder, bundle, recorder


def test_the_probe_shows_the_guesses_and_the_lens_for_the_text(run):
    _, bundle, _ = run
    view = MaskProbe(bundle, "the cat sat on the [MASK]")
    result = view.result
    assert view.error == "" and result["kind"] == "masked-lm" and len(result["predictions"]) == 1
    assert len(result["predictions"][0]["tokens"]) == 5
    lens = result["lens"]
    assert len(lens["layers"]) == 3 and len(lens["top"][0]) == len(lens["tokens"])


def test_typing_new_text_updates_the_result_and_a_bad_text_shows_a_sentence(run):
    _, bundle, _ = run
    view = MaskProbe(bundle, "the cat sat on the [MASK]")
    view.text = "the [MASK] ran in the park"
    assert view.result["text"] == "the [MASK] ran in the park"
    view.text = "no mask here"
    assert "has no mask" in view.error and view.result == {}


def test_a_run_folder_gives_a_slider_over_its_checkpoints(run):
    folder, _, _ = run
    view = MaskProbe(folder, "the cat sat on the [MASK]")
    assert view.checkpoints == ["step 3", "step 6"] and view.checkpoint == 1
    last = view.result["predictions"][0]["probabilities"]
    view.checkpoint = 0
    assert view.result["model"] == "step 3" and view.result["predictions"][0]["probabilities"] != last


def test_a_checkpoint_folder_has_the_same_label_in_compare_and_in_the_probe(run):
    from workbench.explain import compare, fill_mask
    from workbench.training.checkpoint import list_checkpoints

    folder, _, _ = run
    checkpoints = list_checkpoints(folder / "checkpoints")
    view = MaskProbe(checkpoints, "the cat sat on the [MASK]")
    side_by_side = compare(checkpoints, fill_mask, "the cat sat on the [MASK]")
    assert view.checkpoints == side_by_side.labels == ["step 3", "step 6"]
    shown, compared = view.result["predictions"][0], side_by_side.results[-1].predictions[0].to_dict()
    assert shown["tokens"] == compared["tokens"] and shown["probabilities"] == compared["probabilities"]


def test_the_timeline_follows_a_recorder_live_and_reads_a_saved_run(run):
    folder, bundle, recorder = run
    live = ProbeTimeline(recorder)
    assert [r["step"] for r in live.records] == [3, 6]
    recorder.record(bundle, 7)
    assert [r["step"] for r in live.records] == [3, 6, 7]
    live.close()
    recorder.record(bundle, 8)
    assert len(live.records) == 3
    saved = ProbeTimeline(folder)
    assert [r["step"] for r in saved.records] == [3, 6]


def test_the_views_refuse_what_they_cannot_show():
    with pytest.raises(TypeError, match="ProbeTimeline takes"):
        ProbeTimeline(42)
    with pytest.raises(TypeError, match="MaskProbe takes"):
        MaskProbe(42)


def test_on_colab_the_views_turn_on_the_widget_manager_or_say_in_one_line_how(monkeypatch, capsys):
    import sys
    import types

    from workbench.ui import enable_colab_widgets

    assert enable_colab_widgets() is None  # not on Colab: nothing happens
    calls = []
    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append(1))
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    assert enable_colab_widgets() is True and calls == [1]

    def refuse():
        raise RuntimeError("no frontend")

    colab.output = types.SimpleNamespace(enable_custom_widget_manager=refuse)
    assert enable_colab_widgets() is False
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "enable_custom_widget_manager()" in printed[0]


MASKED = "the cat sat on the [MASK]"


def _grid(lens) -> dict:
    """What the view's grid shows of a LogitLensResult: the lens's name, each cell's top token and probability."""
    return {
        "name": lens.lens,
        "top": [[cell[0] for cell in row] for row in lens.top_tokens],
        "top_prob": np.round(lens.top_probs[..., 0], 4).tolist(),
    }


def _shown(view: MaskProbe) -> dict:
    return {key: view.result["lens"][key] for key in ("name", "top", "top_prob")}


def _trained_looking_lens(bundle) -> TunedLens:
    """A lens for ``bundle`` whose translators are no longer the identity, labelled as if trained 200 steps."""
    lens = TunedLens.for_model(bundle)
    with torch.no_grad():
        lens.bias.copy_(torch.randn(lens.bias.shape, generator=torch.Generator().manual_seed(0)) * 2.0)
    lens.trained_steps = 200
    return lens


def test_the_lens_switch_shows_only_with_a_tuned_lens(run):
    _, bundle, _ = run
    plain = MaskProbe(bundle, MASKED)
    assert plain.tuned_label == "" and plain.result["lens"]["name"] == "logit lens" and plain.result["note"] == ""
    switched = MaskProbe(bundle, MASKED, tuned_lens=_trained_looking_lens(bundle))
    assert switched.tuned_label == "tuned lens (step 200)" and switched.lens_kind == "logit"
    assert switched.result["lens"] == plain.result["lens"]  # the logit lens until the switch is moved


def test_switching_to_the_tuned_lens_shows_its_numbers_and_back(run):
    _, bundle, _ = run
    lens = _trained_looking_lens(bundle)
    view = MaskProbe(bundle, MASKED, tuned_lens=lens)
    logit = view.result["lens"]
    view.lens_kind = "tuned"
    tuned = view.result["lens"]
    assert _shown(view) == _grid(logit_lens(bundle, MASKED, top_k=3, lens=lens))
    assert tuned["name"] == "tuned lens (step 200)" and tuned["top_prob"] != logit["top_prob"]
    assert tuned["top_prob"][-1] == logit["top_prob"][-1]  # the last row is the model's output either way
    view.lens_kind = "logit"
    assert view.result["lens"] == logit


def test_an_untrained_tuned_lens_in_the_view_shows_exactly_the_logit_lens(run):
    _, bundle, _ = run
    view = MaskProbe(bundle, MASKED, tuned_lens=TunedLens.for_model(bundle))
    logit = view.result["lens"]
    view.lens_kind = "tuned"
    assert view.result["lens"] == {**logit, "name": "tuned lens (untrained)"}


def test_a_lens_for_another_checkpoint_falls_back_to_the_logit_lens_with_the_sentence(run):
    folder, bundle, _ = run
    lens = _trained_looking_lens(bundle)  # made for the trained model: the run's last checkpoint
    view = MaskProbe(folder, MASKED, tuned_lens=lens)
    view.lens_kind = "tuned"
    assert view.result["lens"]["name"] == "tuned lens (step 200)" and view.result["note"] == ""
    view.checkpoint = 0  # step 3: other weights
    problem = lens.mismatch(view.bundle())
    assert problem and view.error == "" and view.result["model"] == "step 3"
    assert view.result["note"] == f"{problem} Showing the logit lens."
    assert _shown(view) == _grid(logit_lens(view.bundle(), MASKED, top_k=3))


def test_a_lens_for_another_model_falls_back_and_a_path_without_a_lens_is_refused(run, tiny_gpt, tmp_path):
    _, bundle, _ = run
    view = MaskProbe(bundle, MASKED, tuned_lens=TunedLens.for_model(tiny_gpt))
    view.lens_kind = "tuned"
    assert view.result["lens"]["name"] == "logit lens" and view.result["note"].endswith(" Showing the logit lens.")
    assert "tiny-gpt" in view.result["note"]
    with pytest.raises(ProbeError, match=r"^No tuned lens at "):
        MaskProbe(bundle, MASKED, tuned_lens=tmp_path)
