"""Next-sentence and sentence-order tasks: they learn on tiny data, jointly with masked-LM or alone; the head lives
in ``bundle.heads``, saves and loads with the model, resumes, trains in two processes; the probe reads it."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from tests.conftest import TINY_TEXTS
from workbench.errors import ProbeError, TrainingError
from workbench.explain.sentence_pair import sentence_pair
from workbench.models import load_model
from workbench.training import DistributedTrainer, TrainConfig, Trainer
from workbench.training.checkpoint import latest_checkpoint
from workbench.training.pair_task import PairModel

pytestmark = pytest.mark.timeout(300)

QUIET = {"progress": False, "block_size": 48, "batch_size": 8, "log_every": 5, "precision": "fp32"}
# Six different texts, each four times: the text after each one is always the same, so "is next" can be learned.
FIRST, NEXT, OTHER = TINY_TEXTS[0], TINY_TEXTS[1], TINY_TEXTS[3]


def _config(out=None, **kw):
    return TrainConfig(**{**QUIET, "output_dir": str(out) if out else None, **kw})


def _part(history, name):
    return [r[name] for r in history.records if r["kind"] == "train" and name in r]


def test_the_pair_loss_falls_when_an_encoder_trains_the_head_alone(make_tiny, tiny_texts):
    bundle = make_tiny("tiny-bert", kind="encoder")
    config = _config(max_steps=40, learning_rate=3e-3)
    trainer = Trainer(bundle, "next-sentence", tiny_texts, eval_data=tiny_texts, config=config)
    history = trainer.fit()
    pair = _part(history, "pair_loss")
    assert pair[-1] < pair[0] - 0.15
    assert _part(history, "mlm_loss") == []  # no masked-LM head, no masked-LM loss
    metrics = history.eval[-1]
    assert metrics["eval_loss"] == metrics["eval_pair_loss"] and "eval_mlm_loss" not in metrics
    assert metrics["eval_pair_accuracy"] > 0.6
    assert bundle.heads["next-sentence"] is trainer.task.trainable().head  # the bundle keeps what was trained


def test_joint_training_logs_both_parts_and_its_loss_is_their_sum(make_tiny, tiny_texts):
    bundle = make_tiny("tiny-bert")
    # A log every 2 steps of 2 micro-batches: the parts logged are the logged step's, as its loss is.
    config = _config(max_steps=20, log_every=2, gradient_accumulation_steps=2, learning_rate=3e-3)
    history = Trainer(bundle, "sentence-order", tiny_texts, eval_data=tiny_texts, config=config).fit()
    mlm, pair = _part(history, "mlm_loss"), _part(history, "pair_loss")
    assert len(mlm) == len(pair) == 10
    assert history.losses() == pytest.approx([m + p for m, p in zip(mlm, pair, strict=True)], rel=1e-5)
    assert sum(mlm[-3:]) < sum(mlm[:3]) - 1.0  # the masked-LM part learns
    metrics = history.eval[-1]
    assert metrics["eval_loss"] == pytest.approx(metrics["eval_mlm_loss"] + metrics["eval_pair_loss"])
    assert 0.0 <= metrics["eval_pair_accuracy"] <= 1.0


def test_joint_batches_mask_ordinary_tokens_only_and_keep_the_pair_labels(make_tiny, tiny_texts):
    bundle = make_tiny("tiny-bert")
    trainer = Trainer(bundle, "next-sentence", tiny_texts, config=_config(max_steps=1))
    items = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    torch.manual_seed(0)
    batch = trainer.collate(items)
    labels, ids = batch["labels"], batch["input_ids"]
    tok = bundle.tokenizer
    special = {tok.cls_token_id, tok.sep_token_id, tok.pad_token_id}
    for row, item in enumerate(items):
        n = len(item["input_ids"])
        original = item["input_ids"]
        masked = labels[row, :n] != -100
        assert all(int(t) not in special for t in original[masked])  # never [CLS], [SEP] or padding
        assert torch.equal(labels[row, :n][masked], original[masked])  # the label is the token that was there
        assert torch.equal(ids[row, :n][~masked], original[~masked])
        assert (labels[row, n:] == -100).all()
    assert 0 < int((labels != -100).sum()) < int(batch["attention_mask"].sum())
    assert batch["pair_labels"].tolist() == [item["pair_label"] for item in items]
    assert "token_type_ids" not in batch  # ModernBERT takes no segment ids


def test_a_causal_lm_is_refused_with_a_sentence(make_tiny, tiny_texts):
    with pytest.raises(TrainingError, match=r"does not fit a causal-lm model .*a pair task needs an encoder"):
        Trainer(make_tiny("tiny-gpt"), "next-sentence", tiny_texts, config=_config(max_steps=1))


def test_a_second_run_on_the_bundle_continues_with_its_head(make_tiny, tiny_texts):
    bundle = make_tiny("tiny-bert", kind="encoder")
    Trainer(bundle, "next-sentence", tiny_texts, config=_config(max_steps=3)).fit()
    head = bundle.heads["next-sentence"]
    trained = {k: v.clone() for k, v in head.state_dict().items()}
    again = Trainer(bundle, "next-sentence", tiny_texts, config=_config(max_steps=1))
    assert again.task.trainable().head is head
    fresh = Trainer(make_tiny("tiny-bert", kind="encoder"), "next-sentence", tiny_texts, config=_config(max_steps=1))
    assert not torch.equal(fresh.task.trainable().head.dense.weight, trained["dense.weight"])


def test_saved_and_loaded_the_model_keeps_its_head_and_gives_the_same_probability(make_tiny, tiny_texts, tmp_path):
    bundle = make_tiny("tiny-bert")
    Trainer(bundle, "next-sentence", tiny_texts, config=_config(tmp_path / "run", max_steps=5)).fit()
    before = sentence_pair(bundle, FIRST, NEXT)
    loaded = load_model(bundle.save(tmp_path / "saved"))
    assert sorted(loaded.heads) == ["next-sentence"]
    after = sentence_pair(loaded, FIRST, NEXT)
    assert after.probability == pytest.approx(before.probability, abs=1e-6)
    from_checkpoint = load_model(latest_checkpoint(tmp_path / "run" / "checkpoints"))  # a checkpoint is a model folder
    assert sentence_pair(from_checkpoint, FIRST, NEXT).probability == pytest.approx(before.probability, abs=1e-6)


def test_a_resumed_run_continues_like_an_uninterrupted_one(make_tiny, tiny_texts, tmp_path):
    from workbench.training import Callback

    class StopAt(Callback):
        def on_step_end(self, trainer, state, control):
            if state.step == 4:
                control.should_stop = True

    def fresh(out, callbacks=()):
        bundle = make_tiny("tiny-bert", seed=2)
        config = _config(out, max_steps=8, log_every=1)
        return Trainer(bundle, "next-sentence", tiny_texts, config=config, callbacks=callbacks)

    straight = fresh(tmp_path / "a")
    straight.fit()
    fresh(tmp_path / "b", [StopAt()]).fit()
    second = fresh(tmp_path / "b").resume_from()
    resumed = second.fit()
    assert second.state.step == 8
    assert resumed.losses() == straight.history.losses()
    assert _part(resumed, "pair_loss") == _part(straight.history, "pair_loss")  # the first four from the checkpoint
    for key, value in straight.bundle.heads["next-sentence"].state_dict().items():
        torch.testing.assert_close(second.bundle.heads["next-sentence"].state_dict()[key], value)


def test_two_processes_train_next_sentence_like_one_and_hand_back_the_head(make_tiny, tiny_texts, tmp_path):
    corpus = tiny_texts * 2
    runs = {}
    for processes, batch in ((1, 8), (2, 4)):
        bundle = make_tiny("tiny-bert", kind="encoder", seed=1)
        config = _config(tmp_path / str(processes), batch_size=batch, max_steps=3, log_every=1)
        if processes == 1:
            history = Trainer(bundle, "next-sentence", corpus, config=config).fit()
        else:
            history = DistributedTrainer(bundle, "next-sentence", corpus, config=config, num_processes=2).fit()
        runs[processes] = (bundle, history)
    (one, one_history), (two, two_history) = runs[1], runs[2]
    assert two_history.losses() == pytest.approx(one_history.losses(), abs=1e-5)
    for key, value in one.heads["next-sentence"].state_dict().items():  # the trained head came back to this kernel
        torch.testing.assert_close(two.heads["next-sentence"].state_dict()[key], value, atol=1e-5, rtol=1e-4)
    folder = latest_checkpoint(tmp_path / "2" / "checkpoints")
    assert json.loads((folder / "trainer_state.json").read_text())["processes"] == 2
    checkpoint = load_model(folder)
    assert sentence_pair(checkpoint, FIRST, NEXT).probability == pytest.approx(
        sentence_pair(one, FIRST, NEXT).probability, abs=1e-5
    )


def test_the_trainable_is_the_model_and_its_head_as_one_module(make_tiny, tiny_texts):
    bundle = make_tiny("tiny-bert")
    trainer = Trainer(bundle, "sentence-order", tiny_texts, config=_config(max_steps=1))
    module = trainer.task.trainable()
    assert isinstance(module, PairModel)
    assert module.model is bundle.model and module.head is bundle.heads["sentence-order"]
    names = {name.split(".")[0] for name, _ in module.named_parameters()}
    assert names == {"model", "head"}
    head = sum(p.numel() for p in module.head.parameters())
    from workbench.training.metrics import flops_per_token

    expected = flops_per_token(bundle.model, 32, trainer.config.mlm_probability) + 6.0 * head / 32
    assert trainer.task.flops_per_token(32) == pytest.approx(expected)


def test_a_bert_model_gets_segment_ids_in_training_and_in_the_probe(tiny_bert, tiny_texts):
    import transformers

    from workbench.models import ModelBundle

    tok = tiny_bert.tokenizer
    config = transformers.BertConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    bundle = ModelBundle(transformers.BertForMaskedLM(config), tok, "masked-lm", "tiny-classic-bert", "test")
    trainer = Trainer(bundle, "sentence-order", tiny_texts, config=_config(max_steps=3, log_every=1))
    batch = trainer.collate([trainer.train_dataset[i] for i in range(4)])
    sep = batch["input_ids"].eq(tok.sep_token_id).int().cumsum(-1)  # (batch, seq): [SEP]s seen so far
    expected = ((sep >= 1) & ~((sep == 1) & batch["input_ids"].eq(tok.sep_token_id))).long() * batch["attention_mask"]
    assert torch.equal(batch["token_type_ids"], expected)  # 0 up to the first [SEP], then 1
    history = trainer.fit()
    assert len(_part(history, "mlm_loss")) == 3  # BERT's own masked-LM head ("cls") beside the pair head
    result = sentence_pair(bundle, FIRST, NEXT)
    ids = torch.tensor([tok(FIRST, NEXT)["input_ids"]])  # BERT's own pair template: [CLS] a [SEP] b [SEP]
    assert ids.shape[1] == len(result.tokens)
    with torch.no_grad():
        hidden = bundle.model.base_model(ids, token_type_ids=torch.tensor([result.segments])).last_hidden_state
        by_hand = float(bundle.heads["sentence-order"](hidden).softmax(-1)[0, 1])
    assert result.probability == pytest.approx(by_hand, abs=1e-6)


# ------------------------------------------------------------------ the probe


@pytest.fixture(scope="module")
def trained(make_tiny):
    bundle = make_tiny("tiny-bert", kind="encoder")
    trainer = Trainer(bundle, "next-sentence", TINY_TEXTS, config=_config(max_steps=40, learning_rate=3e-3))
    trainer.fit()
    return bundle, trainer.train_dataset


def test_the_probe_reads_the_pair_as_training_wrote_it(trained):
    trained, _ = trained
    result = sentence_pair(trained, FIRST, NEXT)
    assert result.task == "next-sentence" and 0.0 <= result.probability <= 1.0
    tok = trained.tokenizer
    assert result.tokens[0] == tok.cls_token and result.tokens[-1] == tok.sep_token
    sep = result.tokens.index(tok.sep_token)
    assert result.segments == [0] * (sep + 1) + [1] * (len(result.tokens) - sep - 1)
    assert [i for i, s in enumerate(result.special) if s] == [0, sep, len(result.tokens) - 1]
    assert result.to_dict()["probability"] == result.probability
    assert result.label == ("is next" if result.probability >= 0.5 else "not next")


def test_the_trained_probe_finds_the_true_next_texts_likelier_than_the_random_ones(trained):
    bundle, pairs = trained
    assert len(pairs.segments) == len(TINY_TEXTS)  # each text is one segment: pairs map back to texts
    readings = {0: [], 1: []}
    for first, second, label in zip(pairs.firsts, pairs.seconds, pairs.labels, strict=True):
        result = sentence_pair(bundle, TINY_TEXTS[first], TINY_TEXTS[second])
        readings[int(label)].append(result.probability)
    assert sum(readings[1]) / len(readings[1]) > sum(readings[0]) / len(readings[0]) + 0.2


def test_the_probe_needs_a_pair_head(make_tiny):
    with pytest.raises(ProbeError, match=r"has no next-sentence or sentence-order head; train one first with Trainer"):
        sentence_pair(make_tiny("tiny-bert"), FIRST, NEXT)


def test_the_probe_asks_which_head_where_there_are_two(trained):
    trained, _ = trained
    from workbench.models.objective_heads import make_head

    other = make_head("sentence-order", trained.config.hidden_size)
    both = dataclasses.replace(trained, heads={**trained.heads, "sentence-order": other})
    with pytest.raises(ProbeError, match="has both a next-sentence and a sentence-order head; pass task="):
        sentence_pair(both, FIRST, NEXT)
    assert sentence_pair(both, FIRST, NEXT, task="sentence-order").task == "sentence-order"
    with pytest.raises(ProbeError, match="task must be one of next-sentence, sentence-order"):
        sentence_pair(both, FIRST, NEXT, task="replaced-token")


@pytest.mark.parametrize(("first", "second", "which"), [("", NEXT, "first"), (FIRST, "  ", "second")])
def test_the_probe_refuses_an_empty_text(trained, first, second, which):
    trained, _ = trained
    with pytest.raises(ProbeError, match=f"The {which} text is empty"):
        sentence_pair(trained, first, second)
