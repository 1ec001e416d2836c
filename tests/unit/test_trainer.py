"""The Trainer: one loop, three tasks, checkpoints that never lose work, and control while it runs."""

from __future__ import annotations

import json
import math
import threading

import pytest
import torch

from tests.fault_injection import nan_loss_from
from workbench.errors import CheckpointError, ConfigError, DataError, TrainingError
from workbench.models import load_model
from workbench.training import Callback, TrainConfig, Trainer
from workbench.training.checkpoint import latest_checkpoint, list_checkpoints

QUIET = {"progress": False, "block_size": 16, "max_length": 32, "batch_size": 4, "log_every": 1}


@pytest.fixture
def bert(make_tiny):
    return make_tiny("tiny-bert")


@pytest.fixture
def gpt(make_tiny):
    return make_tiny("tiny-gpt")


def _labelled(tiny_texts):
    from workbench.data import load_labelled

    pairs = [(t, "animal" if ("cat" in t or "dog" in t) else "other") for t in tiny_texts]
    return load_labelled(pairs)


def _config(tmp_path=None, **kw):
    return TrainConfig(**{**QUIET, "output_dir": str(tmp_path) if tmp_path else None, **kw})


def _first_and_last(history):
    losses = history.losses()
    return sum(losses[:3]) / 3, sum(losses[-3:]) / 3


def test_masked_lm_loss_falls(bert, tiny_texts):
    history = Trainer(bert, "masked-lm", tiny_texts, config=_config(max_steps=60, learning_rate=3e-3)).fit()
    first, last = _first_and_last(history)
    assert last < first - 0.5


def test_causal_lm_loss_falls(gpt, tiny_texts):
    history = Trainer(gpt, "causal-lm", tiny_texts, config=_config(max_steps=40, learning_rate=3e-3)).fit()
    first, last = _first_and_last(history)
    assert last < first - 0.5


def test_classify_loss_falls_and_reports_classification_metrics(tiny_texts, make_tiny):
    data = _labelled(tiny_texts)
    clf = make_tiny("tiny-bert", kind="classifier", label_names=data.label_names)
    trainer = Trainer(clf, "classify", data, eval_data=data, config=_config(max_steps=40, learning_rate=3e-3))
    history = trainer.fit()
    first, last = _first_and_last(history)
    assert last < first
    final = history.eval[-1]
    assert final["eval_accuracy"] > 0.9
    assert {"eval_precision", "eval_recall", "eval_macro_f1", "eval_confusion_matrix"} <= set(final)


def test_language_model_evaluation_reports_loss_and_perplexity(gpt, tiny_texts):
    trainer = Trainer(gpt, "causal-lm", tiny_texts, eval_data=tiny_texts[:8], config=_config(max_steps=2))
    metrics = trainer.fit().eval[-1]
    assert metrics["eval_perplexity"] == pytest.approx(math.exp(metrics["eval_loss"]), rel=1e-6)


def test_sparse_masked_lm_head_gives_the_same_loss_as_the_full_head(bert, tiny_texts):
    sparse = Trainer(bert, "masked-lm", tiny_texts, config=_config(precision="fp32"))
    full = Trainer(bert, "masked-lm", tiny_texts, config=_config(precision="fp32", sparse_mlm_head=False))
    torch.manual_seed(0)
    batch = sparse.feed.to_device(sparse.collate([sparse.train_dataset[i] for i in range(4)]))
    bert.model.eval()
    with torch.no_grad():
        a, _ = sparse.task.loss(bert.model, batch)
        b, _ = full.task.loss(bert.model, batch)
    assert float(a) == pytest.approx(float(b), abs=1e-5)


def test_gradient_accumulation_4_by_8_matches_batch_32(tiny_texts, make_tiny):
    corpus = tiny_texts * 4

    def run(batch_size, accum):
        model = make_tiny("tiny-gpt", seed=1)
        model.model.config.attention_dropout = 0.0
        cfg = _config(
            batch_size=batch_size, gradient_accumulation_steps=accum, max_steps=3, precision="fp32", max_grad_norm=None
        )
        Trainer(model, "causal-lm", corpus, config=cfg).fit()
        return torch.cat([p.detach().flatten() for p in model.model.parameters()])

    torch.testing.assert_close(run(8, 4), run(32, 1), atol=1e-5, rtol=1e-4)


class _StopAt(Callback):
    def __init__(self, step, error=None):
        self.step, self.error = step, error

    def on_step_end(self, trainer, state, control):
        if state.step == self.step:
            if self.error:
                raise self.error
            control.should_stop = True


def test_stop_saves_a_checkpoint_before_returning(bert, tiny_texts, tmp_path):
    trainer = Trainer(bert, "masked-lm", tiny_texts, config=_config(tmp_path, max_steps=50), callbacks=[_StopAt(7)])
    trainer.fit()
    assert trainer.state.status == "stopped" and trainer.state.step == 7
    assert latest_checkpoint(tmp_path / "checkpoints").name == "step-0000007"


def test_keyboard_interrupt_saves_a_checkpoint_before_returning(bert, tiny_texts, tmp_path):
    trainer = Trainer(
        bert,
        "masked-lm",
        tiny_texts,
        config=_config(tmp_path, max_steps=50),
        callbacks=[_StopAt(5, KeyboardInterrupt())],
    )
    trainer.fit()
    assert trainer.state.message == "interrupted at step 5"
    assert latest_checkpoint(tmp_path / "checkpoints").name == "step-0000005"


def test_resume_is_exact_on_cpu(tiny_texts, tmp_path, make_tiny):
    def fresh(out, **kw):
        bundle = make_tiny("tiny-bert", seed=2)
        return Trainer(bundle, "masked-lm", tiny_texts, config=_config(out, max_steps=12, **kw))

    straight = fresh(tmp_path / "a").fit().losses()
    first = fresh(tmp_path / "b")
    first.callbacks.add(_StopAt(5))
    first.fit()
    second = fresh(tmp_path / "b").resume_from()
    resumed = second.fit().losses()
    assert second.state.step == 12
    assert resumed == straight


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(bert, tiny_texts, tmp_path):
    trainer = Trainer(bert, "masked-lm", tiny_texts, config=_config(tmp_path, max_steps=50, save_every=4))
    nan_loss_from(trainer, 10)
    trainer.fit()
    assert trainer.state.status == "nan"
    assert "step 10" in trainer.state.message and "step-0000008" in trainer.state.message
    saved = list_checkpoints(tmp_path / "checkpoints")
    assert saved[-1].name == "step-0000008"
    reloaded = load_model(saved[-1])
    assert all(torch.isfinite(p).all() for p in reloaded.model.parameters())


def test_the_folder_of_an_interrupted_save_is_never_loaded(bert, tiny_texts, tmp_path):
    Trainer(bert, "masked-lm", tiny_texts, config=_config(tmp_path, max_steps=3)).fit()
    root = tmp_path / "checkpoints"
    (root / ".step-0000009.partial-abc").mkdir()
    (root / "step-0000010").mkdir()  # renamed but empty: no trainer_state.json
    assert latest_checkpoint(root).name == "step-0000003"
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        Trainer(bert, "masked-lm", tiny_texts, config=_config(tmp_path)).resume_from(root / "step-0000010")


def test_keep_last_prunes_old_checkpoints(bert, tiny_texts, tmp_path):
    Trainer(bert, "masked-lm", tiny_texts, config=_config(tmp_path, max_steps=10, save_every=2, keep_last=2)).fit()
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step-0000008", "step-0000010"]


def test_a_checkpoint_is_a_loadable_model_folder(bert, tiny_texts, tmp_path):
    Trainer(bert, "masked-lm", tiny_texts, config=_config(tmp_path, max_steps=2)).fit()
    again = load_model(latest_checkpoint(tmp_path / "checkpoints"))
    assert again.kind == "masked-lm"


def test_metrics_jsonl_holds_every_logged_step(bert, tiny_texts, tmp_path):
    Trainer(bert, "masked-lm", tiny_texts, config=_config(tmp_path, max_steps=6, log_every=2)).fit()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [2, 4, 6]
    assert {"loss", "smoothed_loss", "learning_rate", "grad_norm", "tokens_per_second", "mfu"} <= set(rows[0])


def test_background_job_pauses_keeps_its_step_and_resumes(bert, tiny_texts):
    paused = threading.Event()

    class PauseAt(Callback):
        def on_step_end(self, trainer, state, control):
            if state.step == 3:
                control.should_pause = True

        def on_pause(self, trainer, state, control):
            paused.set()

    trainer = Trainer(bert, "masked-lm", tiny_texts, config=_config(max_steps=8), callbacks=[PauseAt()])
    job = trainer.start()
    assert paused.wait(30)
    assert job.state.status == "paused" and job.state.step == 3
    job.resume()
    assert job.wait(60)
    assert job.state.step == 8 and job.state.status == "finished"


def test_background_job_stop_saves_and_ends_the_thread(bert, tiny_texts, tmp_path):
    started = threading.Event()

    class Signal(Callback):
        def on_step_end(self, trainer, state, control):
            started.set()

    trainer = Trainer(bert, "masked-lm", tiny_texts, config=_config(tmp_path, max_steps=100_000), callbacks=[Signal()])
    job = trainer.start()
    assert started.wait(30)
    assert job.stop(timeout=30)
    assert not job.running and job.state.status == "stopped"
    assert latest_checkpoint(tmp_path / "checkpoints").name == f"step-{job.state.step:07d}"


def test_early_stopping_stops_when_the_metric_stops_improving(gpt, tiny_texts):
    cfg = _config(max_steps=200, eval_every=1, early_stopping_patience=2, learning_rate=1e-9, warmup_ratio=0.0)
    trainer = Trainer(gpt, "causal-lm", tiny_texts, eval_data=tiny_texts[:4], config=cfg)
    trainer.fit()
    assert trainer.state.step < 20


def test_the_same_seed_repeats_a_run(tiny_texts, make_tiny):
    def run():
        bundle = make_tiny("tiny-bert", seed=5)
        return Trainer(bundle, "masked-lm", tiny_texts, config=_config(max_steps=5, seed=9)).fit().losses()

    assert run() == run()


# --------------------------------------------------------------- bad input


def test_causal_lm_on_an_encoder_is_refused_before_any_step(bert, tiny_texts):
    with pytest.raises(TrainingError, match="does not fit a masked-lm model"):
        Trainer(bert, "causal-lm", tiny_texts, config=_config())


def test_classify_without_labels_is_refused(make_tiny):
    clf = make_tiny("tiny-bert", kind="classifier")
    with pytest.raises(DataError, match="Texts without labels cannot train a classifier"):
        Trainer(clf, "classify", object(), config=_config())


def test_labels_out_of_range_name_the_fix(tiny_texts, make_tiny):
    from workbench.data import load_labelled

    data = load_labelled([(t, str(i % 3)) for i, t in enumerate(tiny_texts)])
    clf = make_tiny("tiny-bert", kind="classifier")
    with pytest.raises(DataError, match="label_names="):
        Trainer(clf, "classify", data, config=_config())


def test_a_batch_larger_than_the_data_is_refused(gpt, tiny_texts):
    with pytest.raises(DataError, match="larger than the training data"):
        Trainer(gpt, "causal-lm", tiny_texts, config=_config(batch_size=10_000))


def test_an_unknown_task_is_refused(gpt, tiny_texts):
    with pytest.raises(ConfigError, match="Unknown task"):
        Trainer(gpt, "translate", tiny_texts, config=_config())


@pytest.mark.parametrize("lr", [0, -1e-3])
def test_a_learning_rate_of_zero_or_below_is_refused(lr):
    with pytest.raises(ConfigError, match="learning_rate must be above zero"):
        TrainConfig(learning_rate=lr)


def test_an_unknown_config_field_lists_the_fields():
    with pytest.raises(ConfigError, match=r"Unknown config field.*lr_max.*learning_rate"):
        TrainConfig.from_dict({"lr_max": 1.0})


def test_resume_from_another_models_checkpoint_is_refused(bert, gpt, tiny_texts, tmp_path):
    Trainer(bert, "masked-lm", tiny_texts, config=_config(tmp_path, max_steps=2)).fit()
    other = Trainer(gpt, "causal-lm", tiny_texts, config=_config(tmp_path / "other"))
    with pytest.raises(CheckpointError, match="saved from another model"):
        other.resume_from(latest_checkpoint(tmp_path / "checkpoints"))


def test_dynamic_padding_leaves_each_examples_loss_unchanged(tiny_texts, make_tiny):
    data = _labelled(tiny_texts)
    clf = make_tiny("tiny-bert", kind="classifier", label_names=data.label_names)
    trainer = Trainer(clf, "classify", data, config=_config(precision="fp32"))
    items = [trainer.train_dataset[i] for i in (0, 2, 3)]  # different lengths: the batch pads two of them
    assert len({len(x["input_ids"]) for x in items}) > 1
    model = clf.model.eval()
    with torch.no_grad():
        batched = model(**trainer.collate(items)).logits
        alone = torch.cat([model(**trainer.collate([x])).logits for x in items])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-4)


def test_length_grouped_batches_hold_similar_lengths(tiny_texts, make_tiny):
    data = _labelled(tiny_texts * 10)
    clf = make_tiny("tiny-bert", kind="classifier", label_names=data.label_names)
    trainer = Trainer(clf, "classify", data, config=_config())
    order = trainer.task.order(trainer.train_dataset, epoch=0)
    assert sorted(order) == list(range(len(trainer.train_dataset)))
    lengths = [len(trainer.train_dataset[i]["input_ids"]) for i in order]
    padded_grouped = sum(max(lengths[i : i + 4]) * len(lengths[i : i + 4]) for i in range(0, len(lengths), 4))
    shuffled = [len(trainer.train_dataset[i]["input_ids"]) for i in torch.randperm(len(lengths)).tolist()]
    padded_random = sum(max(shuffled[i : i + 4]) * len(shuffled[i : i + 4]) for i in range(0, len(shuffled), 4))
    assert padded_grouped < padded_random


def test_a_masked_lm_batch_with_no_masked_token_has_loss_zero_not_nan(bert, tiny_texts):
    trainer = Trainer(bert, "masked-lm", tiny_texts, config=_config(precision="fp32"))
    items = [trainer.train_dataset[i] for i in range(2)]
    batch = {"input_ids": torch.stack([x["input_ids"] for x in items])}
    batch["labels"] = torch.full_like(batch["input_ids"], -100)
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    loss, _ = trainer.task.loss(bert.model, batch)
    assert float(loss.detach()) == 0.0


def test_the_nan_message_says_when_no_checkpoint_was_written(bert, tiny_texts):
    trainer = Trainer(bert, "masked-lm", tiny_texts, config=_config(max_steps=20))
    nan_loss_from(trainer, 3)
    trainer.fit()
    assert trainer.state.message == (
        "NaN or inf loss at step 3; stopped. No checkpoint had been written yet; set save_every to keep one."
    )


def test_an_empty_dataset_is_refused_before_any_step(gpt):
    with pytest.raises(DataError, match="empty"):
        Trainer(gpt, "causal-lm", [], config=_config())


def test_training_attention_kernel_is_restored_after_the_run(bert, tiny_texts):
    bert.model.set_attn_implementation("sdpa")
    trainer = Trainer(bert, "masked-lm", tiny_texts, config=_config(max_steps=2, attention="eager"))
    seen = []

    class Look(Callback):
        def on_step_end(self, trainer, state, control):
            seen.append(trainer.model.config._attn_implementation)

    trainer.callbacks.add(Look())
    trainer.fit()
    assert seen == ["eager", "eager"]
    assert bert.model.config._attn_implementation == "sdpa"


def test_after_mixed_precision_training_the_model_computes_in_full_precision_again(bert, tiny_texts):
    trainer = Trainer(bert, "masked-lm", tiny_texts, config=_config(max_steps=2, precision="auto"))
    trainer.fit()
    if trainer.state.precision == "fp32":
        pytest.skip("this machine trains in fp32, so there is no autocast to leave behind")
    ids = bert.tokenizer("the cat sat on the mat", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = bert.model(input_ids=ids).logits
        plain = type(bert.model).forward(bert.model, input_ids=ids).logits
    assert "_original_forward" not in bert.model.__dict__
    torch.testing.assert_close(logits, plain, rtol=0, atol=0)


def test_an_unknown_attention_kernel_is_refused():
    with pytest.raises(ConfigError, match="attention must be"):
        TrainConfig(attention="flash")


def test_a_stop_right_after_start_is_not_lost(bert, tiny_texts):
    trainer = Trainer(bert, "masked-lm", tiny_texts, config=_config(max_steps=100_000))
    job = trainer.start()
    job.stop(wait=False)  # before the thread has taken a single step
    assert job.wait(60)
    assert job.state.status == "stopped" and job.state.step < 100_000


def test_a_masked_lm_batch_always_has_a_token_to_predict(bert, tiny_texts):
    trainer = Trainer(bert, "masked-lm", tiny_texts, config=_config(mlm_probability=1e-6))
    items = [trainer.train_dataset[i] for i in range(2)]
    for _ in range(5):
        batch = trainer.collate(items)
        assert int((batch["labels"] != -100).sum()) == 1  # the draw masked nothing; one token is masked anyway
        position = (batch["labels"] != -100).nonzero()[0]
        assert int(batch["input_ids"][tuple(position)]) == bert.tokenizer.mask_token_id


def test_the_old_resume_name_still_loads_a_checkpoint_and_names_the_new_one(bert, tiny_texts, tmp_path):
    Trainer(bert, "masked-lm", tiny_texts, config=_config(tmp_path, max_steps=2)).fit()
    again = Trainer(bert, "masked-lm", tiny_texts, config=_config(tmp_path, max_steps=4))
    with pytest.warns(DeprecationWarning, match=r"Trainer\.resume_from\(path\)"):
        assert again.resume() is again
    assert again.state.step == 2 and again.state.last_checkpoint.endswith("step-0000002")


def test_bf16_asked_for_on_a_cpu_without_native_bf16_warns_before_training(bert, tiny_texts):
    from workbench.training.precision import cpu_has_bf16

    if cpu_has_bf16():
        pytest.skip("this CPU has native bf16: bf16 is the fast choice here")
    with pytest.warns(UserWarning, match="precision='auto' picks fp32"):
        Trainer(bert, "masked-lm", tiny_texts, config=_config(precision="bf16"))


def test_masked_lm_flops_count_the_sparse_head_at_the_masked_share_only(bert, tiny_texts):
    from workbench.training.metrics import flops_per_token

    sparse = Trainer(bert, "masked-lm", tiny_texts, config=_config(mlm_probability=0.2))
    full = Trainer(bert, "masked-lm", tiny_texts, config=_config(mlm_probability=0.2, sparse_mlm_head=False))
    assert sparse.speedometer.flops_per_token == flops_per_token(bert.model, 16, head_share=0.2)
    assert full.speedometer.flops_per_token == flops_per_token(bert.model, 16, head_share=1.0)


def test_mfu_on_a_cpu_names_the_measured_matmul_peak_it_is_a_share_of(gpt, tiny_texts):
    trainer = Trainer(gpt, "causal-lm", tiny_texts, config=_config(max_steps=1, precision="fp32", device="cpu"))
    trainer.fit()
    assert trainer.state.mfu_basis == "measured fp32 matmul peak"
    assert 0 < trainer.state.mfu < 1
