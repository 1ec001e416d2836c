"""The "distill" task: a student learns a frozen teacher's soft labels (classifiers) or masked-LM distribution,
with the true labels' loss beside; it trains, evaluates, saves, resumes, and refuses pairs that do not fit."""

from __future__ import annotations

import copy

import pytest
import torch

from workbench.compress.distill import every_other_layer
from workbench.data import load_labelled
from workbench.errors import ConfigError, TrainingError
from workbench.models import load_model
from workbench.training import Callback, TrainConfig, Trainer
from workbench.training.checkpoint import latest_checkpoint
from workbench.training.distill_task import soft_label_kl
from workbench.training.metrics import flops_per_token

LABELS = ["animal", "other"]
QUIET = {"progress": False, "block_size": 16, "max_length": 32, "batch_size": 4, "log_every": 1, "precision": "fp32"}


def _config(tmp_path=None, **kw):
    return TrainConfig(**{**QUIET, "output_dir": str(tmp_path) if tmp_path else None, **kw})


@pytest.fixture(scope="module")
def data(tiny_texts_module):
    return load_labelled([(t, "animal" if ("cat" in t or "dog" in t) else "other") for t in tiny_texts_module])


@pytest.fixture(scope="module")
def tiny_texts_module():
    from tests.conftest import TINY_TEXTS

    return list(TINY_TEXTS)


@pytest.fixture(scope="module")
def teacher(make_tiny, sharpen):
    # Sharpened so its soft labels are far from uniform: a student has something to learn from them.
    return sharpen(make_tiny("tiny-bert", kind="classifier", label_names=LABELS, layers=4, seed=5), 3.0)


@pytest.fixture(scope="module")
def mlm_teacher(make_tiny, sharpen):
    return sharpen(make_tiny("tiny-bert", layers=2, seed=5))


def _first_batch(trainer):
    return trainer.feed.to_device(trainer.collate([trainer.train_dataset[i] for i in range(4)]))


@pytest.mark.parametrize("which", ["teacher", "mlm_teacher"])
def test_a_student_distilled_from_itself_at_temperature_1_has_zero_loss(which, request, data, tiny_texts_module):
    teacher = request.getfixturevalue(which)
    student = copy.deepcopy(teacher)
    train = data if teacher.kind == "classifier" else tiny_texts_module
    cfg = _config(temperature=1.0, hard_label_weight=0.0)
    trainer = Trainer(student, "distill", train, config=cfg, teacher=teacher)
    torch.manual_seed(0)
    loss, _ = trainer.task.loss(student.model, _first_batch(trainer))
    assert abs(float(loss.detach())) < 1e-6


def test_the_soft_loss_is_t_squared_times_the_kl_and_the_hard_loss_weighted_beside_it(teacher, data, make_tiny):
    student = make_tiny("tiny-bert", kind="classifier", label_names=LABELS, seed=9)
    trainer = Trainer(
        student, "distill", data, config=_config(temperature=3.0, hard_label_weight=0.25), teacher=teacher
    )
    batch = _first_batch(trainer)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        s, t = student.model(**inputs).logits, teacher.model(**inputs).logits
        loss, _ = trainer.task.loss(student.model, batch)
    soft = 9.0 * soft_label_kl(s, t, 3.0) / 4
    hard = torch.nn.functional.cross_entropy(s, batch["labels"])
    assert float(loss) == pytest.approx(float(soft + 0.25 * hard), rel=1e-5)
    assert float(soft) > 1e-3  # the teacher's soft labels differ from the fresh student's
    assert trainer.task.log_parts() == pytest.approx({"soft_loss": float(soft), "hard_loss": float(hard)}, rel=1e-5)


def test_classifier_distillation_soft_loss_falls_and_the_teacher_stays_frozen(teacher, data, make_tiny):
    student = make_tiny("tiny-bert", kind="classifier", label_names=LABELS, seed=9)
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    cfg = _config(max_steps=30, learning_rate=3e-3, log_every=5)
    history = Trainer(student, "distill", data, eval_data=data, config=cfg, teacher=teacher).fit()
    soft = [r["soft_loss"] for r in history.records if r["kind"] == "train"]
    assert soft[-1] < 0.5 * soft[0]
    assert all(torch.equal(v, teacher.model.state_dict()[k]) for k, v in before.items())
    assert not teacher.model.training and all(p.grad is None for p in teacher.model.parameters())
    final = history.eval[-1]
    assert {"eval_loss", "eval_soft_loss", "eval_hard_loss", "eval_kl", "eval_agreement", "eval_accuracy"} <= set(final)
    assert final["eval_agreement"] >= 0.75


def test_masked_lm_distillation_soft_loss_falls(mlm_teacher, tiny_texts_module, make_tiny):
    student = make_tiny("tiny-bert", seed=9)
    cfg = _config(max_steps=30, learning_rate=3e-3, log_every=5, hard_label_weight=0.0)
    history = Trainer(student, "distill", tiny_texts_module, config=cfg, teacher=mlm_teacher).fit()
    soft = [r["soft_loss"] for r in history.records if r["kind"] == "train"]
    assert sum(soft[-3:]) / 3 < 0.6 * soft[0]


def test_a_student_of_itself_agrees_with_its_teacher_everywhere(mlm_teacher, tiny_texts_module):
    trainer = Trainer(
        copy.deepcopy(mlm_teacher),
        "distill",
        tiny_texts_module,
        eval_data=tiny_texts_module[:8],
        config=_config(temperature=1.0),
        teacher=mlm_teacher,
    )
    metrics = trainer.evaluate()
    assert metrics["eval_agreement"] == 1.0
    assert metrics["eval_kl"] == pytest.approx(0.0, abs=1e-6) and metrics["eval_soft_loss"] == pytest.approx(
        0, abs=1e-6
    )
    assert metrics["eval_loss"] == pytest.approx(0.5 * metrics["eval_hard_loss"], rel=1e-5)


def test_the_flops_count_the_teachers_forward_beside_the_students_training(teacher, data, make_tiny):
    student = make_tiny("tiny-bert", kind="classifier", label_names=LABELS)
    task = Trainer(student, "distill", data, config=_config(), teacher=teacher).task
    alone = flops_per_token(student.model, 32, 1 / 32)
    assert task.flops_per_token(32) == pytest.approx(alone + flops_per_token(teacher.model, 32, 1 / 32) / 3)


class _StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, state, control):
        if state.step == self.step:
            control.should_stop = True


def test_resume_continues_exactly_and_a_checkpoint_loads_as_the_student(teacher, data, tmp_path):
    def fresh(out):
        return Trainer(every_other_layer(teacher), "distill", data, config=_config(out, max_steps=8), teacher=teacher)

    straight = fresh(tmp_path / "a").fit().losses()
    first = fresh(tmp_path / "b")
    first.callbacks.add(_StopAt(3))
    first.fit()
    second = fresh(tmp_path / "b").resume_from()
    assert second.fit().losses() == straight
    saved = load_model(latest_checkpoint(tmp_path / "b" / "checkpoints"))
    assert saved.kind == "classifier" and saved.model.config.num_hidden_layers == 2
    assert saved.extra["distillation"] == {"teacher": teacher.name, "layers": [0, 2]}
    enc = teacher.tokenizer("The cat sat.", return_tensors="pt")
    with torch.inference_mode():
        torch.testing.assert_close(saved.model(**enc).logits, second.bundle.model(**enc).logits, atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------------ bad input


def test_a_teacher_of_another_kind_is_refused(mlm_teacher, data, make_tiny):
    student = make_tiny("tiny-bert", kind="classifier", label_names=LABELS)
    with pytest.raises(TrainingError, match="is a classifier but the teacher tiny-bert is a masked-lm"):
        Trainer(student, "distill", data, config=_config(), teacher=mlm_teacher)


def test_a_student_with_another_tokenizer_is_refused(teacher, data, make_tiny):
    other = make_tiny("tiny-bert", kind="classifier", label_names=LABELS, corpus=["Entirely other words here."] * 8)
    with pytest.raises(TrainingError, match="have different tokenizers"):
        Trainer(other, "distill", data, config=_config(), teacher=teacher)


def test_a_student_with_other_labels_is_refused(teacher, data, make_tiny):
    student = make_tiny("tiny-bert", kind="classifier", label_names=["other", "animal"])
    with pytest.raises(TrainingError, match=r"labels \(other, animal\) differ from the teacher's \(animal, other\)"):
        Trainer(student, "distill", data, config=_config(), teacher=teacher)


def test_a_causal_lm_student_is_refused(make_tiny, tiny_texts_module):
    gpt = make_tiny("tiny-gpt")
    with pytest.raises(TrainingError, match=r"distillation trains a classifier .* or a masked LM"):
        Trainer(gpt, "distill", tiny_texts_module, config=_config(), teacher=make_tiny("tiny-gpt", seed=1))


def test_the_student_as_its_own_teacher_is_refused(make_tiny, tiny_texts_module):
    bundle = make_tiny("tiny-bert")
    with pytest.raises(ConfigError, match="The teacher is the student itself"):
        Trainer(bundle, "distill", tiny_texts_module, config=_config(), teacher=bundle)


@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_a_temperature_of_zero_or_below_is_refused(temperature):
    with pytest.raises(ConfigError, match="temperature must be above zero"):
        TrainConfig(temperature=temperature)
