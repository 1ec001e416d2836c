"""ELECTRA's replaced-token detection: a generator and a discriminator that share embeddings, trained together,
saved as an encoder that loads and fine-tunes, probed token by token."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.errors import ConfigError, ProbeError, TrainingError
from workbench.explain.replaced_tokens import replaced_tokens
from workbench.models import load_model
from workbench.training import Callback, TrainConfig, Trainer
from workbench.training.checkpoint import latest_checkpoint
from workbench.training.electra_pair import ElectraPair, replace_masked
from workbench.training.electra_task import GENERATOR_FOLDER
from workbench.training.metrics import flops_per_token
from workbench.training.tasks import make_task

QUIET = {"progress": False, "block_size": 16, "batch_size": 8, "log_every": 1, "precision": "fp32"}


def _config(out=None, **kw):
    return TrainConfig(**{**QUIET, "output_dir": str(out) if out else None, **kw})


@pytest.fixture
def encoder(make_tiny):
    return make_tiny("tiny-bert", kind="encoder", seed=3)


class _StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, state, control):
        if state.step >= self.step:
            control.should_stop = True


def _batch(task, texts, n=4):
    dataset = task.dataset(texts, "training")
    originals = torch.stack([dataset[i]["input_ids"] for i in range(n)])  # (n, block)
    return originals, task.collator()([dataset[i] for i in range(n)])


def _mean(records, key, which):
    values = [r[key] for r in records if key in r]
    part = values[:3] if which == "first" else values[-3:]
    return sum(part) / len(part)


def test_generator_and_discriminator_losses_both_fall(encoder, tiny_texts):
    history = Trainer(encoder, "replaced-token", tiny_texts, config=_config(max_steps=30, learning_rate=3e-3)).fit()
    train = history.train
    assert _mean(train, "generator_loss", "last") < _mean(train, "generator_loss", "first") - 0.5
    assert _mean(train, "discriminator_loss", "last") < _mean(train, "discriminator_loss", "first") - 0.15
    # The logged loss is the generator's plus 50 x the discriminator's.
    last = train[-1]
    assert last["loss"] == pytest.approx(last["generator_loss"] + 50.0 * last["discriminator_loss"], rel=1e-4)


def test_discriminator_labels_mark_exactly_the_replaced_positions(encoder, tiny_texts):
    task = make_task("replaced-token", encoder, _config())
    originals, batch = _batch(task, tiny_texts)
    masked = batch["labels"] != -100
    n = int(masked.sum())
    vocab = len(encoder.tokenizer)
    # Every other masked position is certain to get its original token back, the others a token it is not.
    wanted = batch["labels"][masked].clone()
    wanted[1::2] = (wanted[1::2] + 1) % vocab
    logits = torch.full((n, vocab), -1e4)
    logits[torch.arange(n), wanted] = 1e4
    corruption = replace_masked(batch["input_ids"], batch["labels"], logits)
    assert torch.equal(corruption.original, originals)
    assert torch.equal(corruption.corrupted[~masked], originals[~masked])  # only masked positions change
    assert torch.equal(corruption.corrupted[masked], wanted)
    assert torch.equal(corruption.replaced, corruption.corrupted != originals)
    assert int(corruption.replaced.sum()) == n // 2  # a sample equal to the original counts as original


def test_sampled_replacements_follow_the_generator_and_only_they_are_labelled(encoder, tiny_texts):
    task = make_task("replaced-token", encoder, _config())
    originals, batch = _batch(task, tiny_texts)
    out = task.pair(**batch, sampler=torch.Generator().manual_seed(0))
    # The same draw again gives the same corruption; its labels are where it differs from the text.
    masked = batch["labels"] != -100
    base, head = task.pair.generator_parts()
    logits = head(base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state[masked])
    again = replace_masked(batch["input_ids"], batch["labels"], logits, sampler=torch.Generator().manual_seed(0))
    assert torch.equal(out.replaced, again.corrupted != originals)
    assert bool(out.replaced.any()) and not bool((out.replaced & ~masked).any())
    special = torch.isin(originals, torch.tensor(encoder.tokenizer.all_special_ids))
    assert torch.equal(out.real, ~special)


def test_the_generator_head_at_masked_positions_gives_its_full_forwards_logits(encoder, tiny_texts):
    task = make_task("replaced-token", encoder, _config())
    _, batch = _batch(task, tiny_texts)
    masked = batch["labels"] != -100
    generator = task.generator.model.eval()
    base, head = task.pair.generator_parts()
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    sparse = head(base(**inputs).last_hidden_state[masked])
    torch.testing.assert_close(sparse, generator(**inputs).logits[masked])


def test_the_embeddings_are_one_module_that_both_losses_train(encoder, tiny_texts):
    task = make_task("replaced-token", encoder, _config())
    generator = task.generator.model
    assert generator.base_model.embeddings is encoder.model.embeddings
    assert generator.get_output_embeddings().weight is encoder.model.get_input_embeddings().weight
    assert generator.config.num_hidden_layers == 1 and encoder.config.num_hidden_layers == 2
    _, batch = _batch(task, tiny_texts)
    table = encoder.model.get_input_embeddings().weight
    for part in ("generator_loss", "discriminator_loss"):
        task.pair.zero_grad(set_to_none=True)
        getattr(task.pair(**batch), part).backward()
        assert table.grad is not None and float(table.grad.abs().sum()) > 0, part
    # One set of weights: the pair's optimizer sees the table once.
    assert sum(p is table for p in task.pair.parameters()) == 1


def test_a_checkpoint_loads_as_an_encoder_with_its_head_giving_the_same_probabilities(encoder, tiny_texts, tmp_path):
    trainer = Trainer(encoder, "replaced-token", tiny_texts, config=_config(tmp_path, max_steps=4, learning_rate=3e-3))
    trainer.fit()
    text = "The cat sat on the mat."
    before = replaced_tokens(encoder, text)
    folder = latest_checkpoint(tmp_path / "checkpoints")
    loaded = load_model(folder)
    assert loaded.kind == "encoder" and sorted(loaded.heads) == ["replaced-token"]
    after = replaced_tokens(loaded, text)
    assert after.tokens.text == before.tokens.text
    np.testing.assert_allclose(after.probabilities, before.probabilities, atol=1e-6)
    # The generator beside it is a masked LM with the trained generator's weights.
    generator = load_model(folder / GENERATOR_FOLDER)
    assert generator.kind == "masked-lm" and generator.config.num_hidden_layers == 1
    for name, value in trainer.task.generator.model.state_dict().items():
        torch.testing.assert_close(generator.model.state_dict()[name], value, msg=name)


def test_the_saved_discriminator_fine_tunes_as_a_classifier(encoder, tiny_texts, tmp_path):
    from workbench.data import load_labelled

    Trainer(encoder, "replaced-token", tiny_texts, config=_config(tmp_path, max_steps=3)).fit()
    labels = ["animal", "other"]
    classifier = load_model(latest_checkpoint(tmp_path / "checkpoints"), kind="classifier", label_names=labels)
    assert classifier.heads == {}
    torch.testing.assert_close(
        classifier.model.base_model.embeddings.tok_embeddings.weight, encoder.model.embeddings.tok_embeddings.weight
    )
    data = load_labelled([(t, "animal" if ("cat" in t or "dog" in t) else "other") for t in tiny_texts])
    history = Trainer(classifier, "classify", data, data, config=_config(max_steps=6, max_length=32)).fit()
    assert len(history.losses()) == 6 and all(np.isfinite(history.losses()))
    assert 0.0 <= history.eval[-1]["eval_accuracy"] <= 1.0


def test_resume_continues_like_an_uninterrupted_run(tiny_texts, tmp_path, make_tiny):
    def fresh(out):
        bundle = make_tiny("tiny-bert", kind="encoder", seed=5)
        return Trainer(bundle, "replaced-token", tiny_texts, config=_config(out, max_steps=8, learning_rate=3e-3))

    straight = fresh(tmp_path / "a").fit()
    first = fresh(tmp_path / "b")
    first.callbacks.add(_StopAt(4))
    first.fit()
    second = fresh(tmp_path / "b").resume_from()
    resumed = second.fit()
    assert second.state.step == 8
    assert resumed.losses() == straight.losses()
    assert [r["discriminator_loss"] for r in resumed.train] == [r["discriminator_loss"] for r in straight.train]


def test_evaluation_reports_both_losses_and_repeats_its_corruption(encoder, tiny_texts):
    trainer = Trainer(encoder, "replaced-token", tiny_texts, tiny_texts[:8], config=_config(max_steps=2))
    trainer.fit()
    first, second = trainer.evaluate(), trainer.evaluate()
    assert first == second
    assert first["eval_loss"] == pytest.approx(first["eval_generator_loss"] + 50.0 * first["eval_discriminator_loss"])
    assert 0.0 < first["eval_replaced_share"] < 0.3  # about 15% masked, fewer replaced
    assert 0.0 <= first["eval_replaced_accuracy"] <= 1.0
    assert {"eval_replaced_precision", "eval_replaced_recall"} <= set(first)


def test_flops_count_the_generators_layers_beside_the_discriminators(make_tiny):
    bundle = make_tiny("tiny-bert", kind="encoder")
    one = make_task("replaced-token", bundle, _config(generator_layers=1))
    two = make_task("replaced-token", make_tiny("tiny-bert", kind="encoder"), _config(generator_layers=2))
    seq, hidden = 16, bundle.config.hidden_size
    layer = sum(p.numel() for p in bundle.model.layers[1].parameters())
    extra_layer = 6.0 * layer + 12.0 * hidden * seq
    assert two.flops_per_token(seq) - one.flops_per_token(seq) == pytest.approx(extra_layer)
    assert one.flops_per_token(seq) > flops_per_token(bundle.model, seq) + flops_per_token(
        one.generator.model, seq, 0.15
    )


def test_a_masked_lm_bundle_trains_its_encoder_as_the_discriminator(make_tiny, tiny_texts, tmp_path):
    bundle = make_tiny("tiny-bert", kind="masked-lm")
    trainer = Trainer(bundle, "replaced-token", tiny_texts, config=_config(tmp_path, max_steps=2))
    assert isinstance(trainer.task.pair, ElectraPair) and trainer.task.pair.discriminator is bundle.model.base_model
    trainer.fit()
    loaded = load_model(latest_checkpoint(tmp_path / "checkpoints"))
    assert loaded.kind == "masked-lm" and "replaced-token" in loaded.heads
    np.testing.assert_allclose(
        replaced_tokens(loaded, "the cat").probabilities, replaced_tokens(bundle, "the cat").probabilities, atol=1e-6
    )


def test_a_causal_lm_is_refused_in_one_sentence(make_tiny, tiny_texts):
    with pytest.raises(TrainingError, match=r"does not fit a causal-lm model .* discriminator is an encoder"):
        Trainer(make_tiny("tiny-gpt"), "replaced-token", tiny_texts, config=_config())


def test_a_generator_larger_than_the_discriminator_is_refused(encoder, tiny_texts):
    with pytest.raises(ConfigError, match=r"generator_layers=3 is more than the discriminator's 2 layers"):
        Trainer(encoder, "replaced-token", tiny_texts, config=_config(generator_layers=3))


def test_the_probe_needs_a_replaced_token_head(encoder):
    with pytest.raises(ProbeError, match="has no replaced-token head; train one with Trainer"):
        replaced_tokens(encoder, "The cat sat.")


def test_the_probe_refuses_an_empty_text(encoder, tiny_texts):
    make_task("replaced-token", encoder, _config())
    with pytest.raises(ProbeError, match="is empty"):
        replaced_tokens(encoder, "  ")


def test_suspects_are_the_real_tokens_above_the_threshold_likeliest_first(encoder, tiny_texts):
    import dataclasses

    make_task("replaced-token", encoder, _config())
    result = replaced_tokens(encoder, "the cat sat on the mat")
    chosen = np.full(len(result.tokens.text), 0.1)
    chosen[0] = 0.99  # [CLS]: special, never a suspect
    chosen[2], chosen[4] = 0.7, 0.9
    found = dataclasses.replace(result, probabilities=chosen).suspects()
    assert found == [(4, result.tokens.text[4], 0.9), (2, result.tokens.text[2], 0.7)]
