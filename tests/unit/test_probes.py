"""Probes on tiny models: fill-mask against transformers' pipeline, the logit lens, generation,
comparison across checkpoints, and the probe recorder during a run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from workbench.explain import (
    ProbeError,
    ProbeRecorder,
    compare,
    fill_mask,
    generate,
    logit_lens,
    next_token,
)
from workbench.training import TrainConfig, Trainer
from workbench.training.checkpoint import STATE_FILE, latest_checkpoint, list_checkpoints


@pytest.fixture(scope="module")
def bert(make_tiny):
    torch.manual_seed(0)
    return make_tiny("tiny-bert")


@pytest.fixture(scope="module")
def gpt(make_tiny):
    torch.manual_seed(0)
    return make_tiny("tiny-gpt")


@pytest.mark.parametrize("text", ["the cat sat on the [MASK]", "the [MASK] sat on the [MASK] and looked"])
def test_fill_mask_equals_the_transformers_pipeline(bert, text):
    from transformers import pipeline

    pipe = pipeline("fill-mask", model=bert.model, tokenizer=bert.tokenizer, top_k=5, device=-1)
    theirs = pipe(text.replace("[MASK]", bert.tokenizer.mask_token))
    theirs = [theirs] if isinstance(theirs[0], dict) else theirs
    ours = fill_mask(bert, text, top_k=5).predictions
    assert len(ours) == len(theirs) == text.count("[MASK]")
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.token_ids == [r["token"] for r in reference]
        np.testing.assert_allclose(mine.probabilities, [r["score"] for r in reference], atol=1e-5)


def test_adjacent_masks_are_read_as_one_word(bert):
    result = fill_mask(bert, "the cat [MASK][MASK] on the mat", top_k=3)
    words = result.words()
    assert len(words) == 1 and words[0]["positions"] == [p.position for p in result.predictions]
    first = words[0]["candidates"][0]
    assert first[1] <= result.predictions[0].probabilities[0] + 1e-6  # a joint probability is no larger
    assert len(words[0]["candidates"]) == 3


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda b, g: fill_mask(b, "the cat sat on the mat"), "has no mask"),
        (lambda b, g: fill_mask(b, "[MASK] " * 80), "shorten it"),
        (lambda b, g: fill_mask(b, ""), "empty"),
        (lambda b, g: fill_mask(g, "the [MASK]"), "masked language model"),
        (lambda b, g: next_token(b, "the cat"), "causal language model"),
        (lambda b, g: logit_lens(b, "the cat sat"), "has no mask"),
        (lambda b, g: logit_lens(g, "the cat", "the quick brown fox"), "tokens"),
        (lambda b, g: generate(b, "the cat"), "causal language model"),
        (lambda b, g: generate(g, "the cat", temperature=-1), "temperature"),
        (lambda b, g: generate(g, "the cat", top_p=0), "top_p"),
        (lambda b, g: generate(g, "the cat " * 40), "shorten it"),
        (lambda b, g: compare([], fill_mask, "the [MASK]"), "at least one"),
        (lambda b, g: compare([b], "lens", "the [MASK]"), "Unknown probe"),
        (lambda b, g: ProbeRecorder("the [MASK]"), "list of probe sentences"),
    ],
)
def test_bad_probe_input_gets_one_sentence(bert, gpt, call, words):
    with pytest.raises(ProbeError, match=words):
        call(bert, gpt)


@pytest.mark.parametrize("which", ["bert", "gpt"])
def test_the_lens_last_row_is_the_models_own_output_distribution(bert, gpt, which):
    bundle = bert if which == "bert" else gpt
    text = "the cat sat on the [MASK]" if which == "bert" else "the cat sat on the"
    lens = logit_lens(bundle, text, top_k=4)
    enc = bundle.tokenizer(text.replace("[MASK]", bundle.tokenizer.mask_token or ""), return_tensors="pt")
    with torch.no_grad():
        probs = bundle.model.eval()(**enc).logits[0].float().softmax(-1)
    np.testing.assert_allclose(lens.target_probs[-1], probs[:, lens.target].numpy(), atol=1e-6)
    np.testing.assert_allclose(lens.top_probs[-1], probs.topk(4).values.numpy(), atol=1e-6)
    assert lens.top_ids.shape == (bundle.config.num_hidden_layers + 1, enc["input_ids"].shape[1], 4)
    assert lens.target_ranks[-1, lens.read_position] == 0  # the default target is the model's own top guess


def test_the_lens_reads_a_middle_layer_through_the_final_norm_and_head(gpt):
    lens = logit_lens(gpt, "the cat sat on the", " mat")
    enc = gpt.tokenizer("the cat sat on the", return_tensors="pt")
    with torch.no_grad():
        hidden = gpt.model(**enc, output_hidden_states=True).hidden_states[1][0]
        probs = gpt.model.lm_head(gpt.model.model.norm(hidden)).softmax(-1)
    np.testing.assert_allclose(lens.target_probs[1], probs[:, lens.target].numpy(), atol=1e-5)


def test_greedy_generation_equals_transformers_generate_and_records_each_step(gpt):
    out = generate(gpt, "the cat sat", max_new_tokens=6, temperature=0)
    enc = gpt.tokenizer("the cat sat", return_tensors="pt")
    with torch.no_grad():
        reference = gpt.model.generate(
            **enc, max_new_tokens=6, do_sample=False, pad_token_id=gpt.tokenizer.eos_token_id
        )[0, enc["input_ids"].shape[1] :]
    ids = [s.token_id for s in out.steps]
    assert ids == reference.tolist()[: len(ids)]
    for step in out.steps:  # greedy: the chosen token is the top alternative
        assert step.alternatives[0][1] == pytest.approx(step.probability)
    assert out.text == out.prompt + out.completion and out.context(1) == out.prompt + out.steps[0].token
    json.dumps(out.to_dict())


def test_sampling_with_one_seed_gives_one_text(gpt):
    a = generate(gpt, "the dog", max_new_tokens=8, temperature=1.2, top_k=20, top_p=0.9, seed=3)
    b = generate(gpt, "the dog", max_new_tokens=8, temperature=1.2, top_k=20, top_p=0.9, seed=3)
    assert [s.token_id for s in a.steps] == [s.token_id for s in b.steps]


def test_compare_runs_one_probe_on_each_checkpoint_side_by_side(tmp_path, make_tiny):
    from tests.conftest import TINY_TEXTS

    bundle = make_tiny("tiny-bert")
    config = TrainConfig(
        max_steps=4,
        batch_size=4,
        block_size=16,
        save_every=2,
        progress=False,
        output_dir=str(tmp_path),
        learning_rate=5e-3,
        keep_last=5,
    )
    Trainer(bundle, "masked-lm", TINY_TEXTS, config=config).fit()
    folders = list_checkpoints(tmp_path / "checkpoints")
    assert len(folders) == 2
    result = compare(folders, fill_mask, "the cat sat on the [MASK]", top_k=3)
    assert result.labels == ["step 2", "step 4"] and len(result.results) == 2  # named as checkpoint_label names them
    first, last = (r.predictions[0].probabilities.tolist() for r in result.results)
    assert first != last
    json.dumps(result.to_dict())


def _checkpoint(root, step):
    from workbench.training.checkpoint import checkpoint_name

    folder = root / checkpoint_name(step)
    folder.mkdir(parents=True)
    (folder / STATE_FILE).write_text("{}")
    return folder


def test_a_run_folder_resolves_to_its_complete_checkpoints_labelled_by_step(tmp_path):
    from workbench.explain.compare import resolve_models

    later, earlier = _checkpoint(tmp_path / "checkpoints", 200), _checkpoint(tmp_path / "checkpoints", 10)
    (tmp_path / "checkpoints" / "step-0000300").mkdir()  # partial: no state file, never offered
    assert resolve_models(tmp_path) == [("step 10", earlier), ("step 200", later)]
    assert resolve_models(tmp_path / "checkpoints") == [("step 10", earlier), ("step 200", later)]
    assert resolve_models([str(later)]) == [("step 200", str(later))]


def test_bundles_names_and_mappings_resolve_to_their_own_labels_and_load_once(bert, tmp_path):
    from workbench.explain.compare import load_resolved, resolve_models

    plain = tmp_path / "my-model"
    plain.mkdir()
    assert resolve_models(bert) == [(bert.name, bert)]
    assert resolve_models([bert, "tiny-gpt", str(plain)]) == [
        (bert.name, bert),
        ("tiny-gpt", "tiny-gpt"),
        ("my-model", str(plain)),
    ]
    assert resolve_models({"before": bert, 2: "tiny-gpt"}) == [("before", bert), ("2", "tiny-gpt")]
    assert load_resolved(bert) is bert


@pytest.mark.parametrize(
    "models, words",
    [([], "needs at least one model"), (42, "got int"), ([None], "got NoneType"), ({"a": 1.5}, "got float")],
)
def test_what_is_not_a_model_is_refused_as_a_probe_error_and_a_type_error(models, words):
    from workbench.errors import ModelListError
    from workbench.explain.compare import resolve_models

    with pytest.raises(ModelListError, match=words) as caught:
        resolve_models(models, "compare")
    assert isinstance(caught.value, ProbeError) and isinstance(caught.value, TypeError)
    assert str(caught.value).startswith("compare ") and str(caught.value).count(". ") == 0


def test_the_explain_errors_live_in_workbench_errors_and_keep_their_old_import_paths():
    from workbench import errors
    from workbench.explain import AttributionError as FromExplain
    from workbench.explain.attribution import AttributionError as FromAttribution
    from workbench.explain.probe import ProbeError as FromProbe

    assert FromProbe is ProbeError is errors.ProbeError
    assert FromExplain is FromAttribution is errors.AttributionError
    for error in (errors.ProbeError, errors.AttributionError):
        assert issubclass(error, errors.WorkbenchError) and issubclass(error, ValueError)


# --- the recorder -------------------------------------------------------------------------------


def _recorded_run(bundle, tmp_path, recorder, **config):
    from tests.conftest import TINY_TEXTS

    settings = dict(
        max_steps=12,
        batch_size=4,
        block_size=16,
        eval_every=4,
        progress=False,
        output_dir=str(tmp_path),
        learning_rate=5e-3,
    )
    settings.update(config)
    trainer = Trainer(
        bundle, "masked-lm", TINY_TEXTS, eval_data=TINY_TEXTS[:6], config=TrainConfig(**settings), callbacks=[recorder]
    )
    return trainer, trainer.fit()


def test_the_recorders_timeline_has_one_row_per_evaluation_and_is_saved_with_checkpoints(tmp_path, make_tiny):
    recorder = ProbeRecorder([("the cat sat on the [MASK]", "mat"), "to be or not to [MASK]"], top_k=3)
    seen = []
    recorder.listeners.append(seen.append)
    _, history = _recorded_run(make_tiny(), tmp_path, recorder)
    evals = [r["step"] for r in history.eval]
    assert [r["step"] for r in recorder.timeline] == evals == [4, 8, 12]
    assert seen == recorder.timeline == history.probes
    first = recorder.timeline[0]["probes"]
    assert first[0]["expected"].strip() == "mat" and first[0]["rank"] >= 0 and 0 < first[0]["probability"] < 1
    assert first[1]["rank"] is None and len(first[1]["top"]) == 3
    saved = json.loads((latest_checkpoint(tmp_path / "checkpoints") / STATE_FILE).read_text())
    assert [r for r in saved["history"]["records"] if r["kind"] == "probe"] == recorder.timeline
    series = recorder.series("the cat sat on the [MASK]")
    assert series["steps"].tolist() == [4, 8, 12] and np.isfinite(series["probability"]).all()


def test_a_resumed_run_keeps_the_earlier_probe_records(tmp_path, make_tiny):
    from tests.conftest import TINY_TEXTS

    first = ProbeRecorder([("the cat sat on the [MASK]", "mat")])
    _recorded_run(make_tiny(), tmp_path, first, max_steps=8)
    assert [r["step"] for r in first.timeline] == [4, 8]
    bundle = make_tiny("tiny-bert")
    resumed = ProbeRecorder([("the cat sat on the [MASK]", "mat")])
    trainer = Trainer(
        bundle,
        "masked-lm",
        TINY_TEXTS,
        eval_data=TINY_TEXTS[:6],
        callbacks=[resumed],
        config=TrainConfig(
            max_steps=12,
            batch_size=4,
            block_size=16,
            eval_every=4,
            progress=False,
            output_dir=str(tmp_path),
            learning_rate=5e-3,
        ),
    )
    trainer.resume_from()
    trainer.fit()
    assert [r["step"] for r in resumed.timeline] == [4, 8, 12]
    assert resumed.timeline[:2] == first.timeline


def test_an_expected_answer_of_several_tokens_stops_the_run_before_it_starts(tmp_path, make_tiny):
    recorder = ProbeRecorder([("the cat sat on the [MASK]", "the quick brown fox")])
    with pytest.raises(ProbeError, match="tokens"):
        _recorded_run(make_tiny(), tmp_path, recorder)
