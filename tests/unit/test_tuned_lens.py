"""The tuned lens: translators that start as the logit lens, train on the one Trainer, save, load and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import TINY_TEXTS
from workbench.errors import ConfigError, ProbeError
from workbench.explain.inputs import encode, inference
from workbench.explain.lens import logit_lens
from workbench.explain.lens_quality import lens_quality
from workbench.models.heads import final_norm_and_head
from workbench.training import DistributedTrainer, TrainConfig, Trainer
from workbench.training.lens_task import lens_cells_kl
from workbench.training.tuned_lens import LENS_FILE, TunedLens, load_tuned_lens

TRAIN = TINY_TEXTS[:12]
HELD_OUT = ["The cat sat on the warm mat near the dog.", "To be, or not to be: all the world is a stage."]


@pytest.fixture(scope="module")
def gpt(tiny_gpt, sharpen):
    return sharpen(tiny_gpt)


@pytest.fixture(scope="module")
def bert(tiny_bert, sharpen):
    return sharpen(tiny_bert)


def _random_lens(bundle, seed: int = 0) -> TunedLens:
    lens = TunedLens.for_model(bundle)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        lens.weight.copy_(torch.randn(lens.weight.shape, generator=g) * 0.2)
        lens.bias.copy_(torch.randn(lens.bias.shape, generator=g))
    return lens


def _config(tmp_path, **changes):
    values = {
        "max_steps": 6,
        "batch_size": 4,
        "block_size": 16,
        "learning_rate": 3e-3,
        "progress": False,
        "warmup_ratio": 0.0,
        "lens_positions": 8,
        "schedule": "constant",
        "output_dir": str(tmp_path),
    }
    return TrainConfig(**{**values, **changes})


@pytest.mark.parametrize("which", ["gpt", "bert"])
def test_a_fresh_tuned_lens_gives_exactly_the_logit_lens(which, gpt, bert):
    bundle, text = (gpt, "the cat sat on the") if which == "gpt" else (bert, "the cat [MASK] on the mat")
    plain = logit_lens(bundle, text, top_k=4)
    tuned = logit_lens(bundle, text, top_k=4, lens=TunedLens.for_model(bundle))
    assert np.array_equal(plain.top_probs, tuned.top_probs)
    assert np.array_equal(plain.target_probs, tuned.target_probs)
    assert plain.lens == "logit lens" and tuned.lens == "tuned lens (untrained)"


@pytest.mark.parametrize("which", ["gpt", "bert"])
def test_the_last_row_through_a_trained_lens_is_the_models_own_output(which, gpt, bert):
    bundle, text, read = (gpt, "the cat sat on the", -1) if which == "gpt" else (bert, "the cat [MASK] on the mat", 3)
    lens = _random_lens(bundle)
    result = logit_lens(bundle, text, top_k=3, lens=lens)
    with inference(bundle.model):
        own = torch.softmax(bundle.model(**encode(bundle, text)).logits[0, read].float(), -1)
    expected = own.topk(3)
    np.testing.assert_allclose(result.top_probs[-1, read], expected.values.numpy(), rtol=1e-5)
    assert result.top_ids[-1, read].tolist() == expected.indices.tolist()
    assert not np.allclose(result.top_probs[0], logit_lens(bundle, text, top_k=3).top_probs[0])  # it did translate


def test_the_chunked_kl_gradient_equals_autograd_through_the_whole_vocabulary(gpt, monkeypatch):
    from workbench.training import lens_task

    monkeypatch.setattr(lens_task, "_CHUNK", 3)  # several chunks of cells
    norm, head = final_norm_and_head(gpt.model)
    g = torch.Generator().manual_seed(1)
    states = torch.randn(7, gpt.model.config.hidden_size, generator=g, requires_grad=True)
    target = torch.log_softmax(torch.randn(4, gpt.model.config.vocab_size, generator=g), -1)
    owner, weights = torch.tensor([0, 1, 2, 3, 0, 1, 2]), torch.rand(7, generator=g)
    chunked = lens_task._ChunkedKL.apply(states, weights, lambda h: head(norm(h)), target, owner)
    (grad_chunked,) = torch.autograd.grad(chunked, states)
    log_q = torch.log_softmax(head(norm(states)), -1)
    plain = (weights * (target[owner].exp() * (target[owner] - log_q)).sum(-1)).sum()
    (grad_plain,) = torch.autograd.grad(plain, states)
    assert float(chunked.detach()) == pytest.approx(float(plain.detach()), rel=1e-5)
    torch.testing.assert_close(grad_chunked, grad_plain, rtol=1e-4, atol=1e-6)
    kl = torch.cat([c.kl for c in lens_task.lens_cells_kl(states.detach(), lambda h: head(norm(h)), target, owner)])
    assert float((kl * weights).sum()) == pytest.approx(float(plain.detach()), rel=1e-5)


@pytest.mark.parametrize("which", ["gpt", "bert"])
def test_training_lowers_the_held_out_kl_at_every_layer(which, gpt, bert, tmp_path):
    bundle = gpt if which == "gpt" else bert
    before = lens_quality(bundle, HELD_OUT * 3, TunedLens.for_model(bundle))
    trainer = Trainer(bundle, "tuned-lens", TRAIN, config=_config(tmp_path, max_steps=40, output_dir=None))
    trainer.fit()
    after = lens_quality(bundle, HELD_OUT * 3, trainer.task.lens)
    np.testing.assert_array_equal(before.kl_tuned, before.kl_logit)  # an untrained lens is the logit lens
    assert (after.kl_tuned[:-1] < after.kl_logit[:-1]).all(), (after.kl_tuned, after.kl_logit)
    assert after.layers_better == 1.0
    assert after.kl_tuned[-1] == 0.0 and after.perplexity_tuned[-1] == after.perplexity_logit[-1]
    assert trainer.task.lens.trained_steps == 40
    for name, p in bundle.model.named_parameters():  # the model is only read
        assert p.grad is None, name


def test_the_lens_saves_loads_and_resumes_like_any_checkpoint(gpt, tmp_path):
    # A constant learning rate: a run of 3 steps then 3 more follows the same course as one of 6.
    straight = Trainer(gpt, "tuned-lens", TRAIN, config=_config(tmp_path / "a"))
    straight.fit()
    first = Trainer(gpt, "tuned-lens", TRAIN, config=_config(tmp_path / "b", max_steps=3))
    first.fit()
    saved = tmp_path / "b" / "checkpoints" / "step-0000003"
    assert (saved / LENS_FILE).is_file() and not (saved / "model.safetensors").exists()  # the model is not copied
    resumed = Trainer(gpt, "tuned-lens", TRAIN, config=_config(tmp_path / "b")).resume_from(saved)
    assert resumed.task.lens.trained_steps == 3
    resumed.fit()
    torch.testing.assert_close(resumed.task.lens.weight, straight.task.lens.weight, rtol=0, atol=1e-7)
    torch.testing.assert_close(resumed.task.lens.bias, straight.task.lens.bias, rtol=0, atol=1e-7)
    loaded = load_tuned_lens(tmp_path / "b", gpt)  # a run folder: its latest checkpoint
    assert loaded.trained_steps == 6
    torch.testing.assert_close(loaded.weight, resumed.task.lens.weight, rtol=0, atol=0)
    beside = loaded.save(tmp_path / "model-folder")
    assert beside == tmp_path / "model-folder" / LENS_FILE
    assert beside.stat().st_mode & 0o044 == 0o044  # others can read it, as any saved model file
    again = load_tuned_lens(tmp_path / "model-folder", gpt)
    assert np.array_equal(
        logit_lens(gpt, "the cat sat", lens=again).top_probs, logit_lens(gpt, "the cat sat", lens=loaded).top_probs
    )


def test_a_lens_refuses_another_model(gpt, make_tiny, sharpen, tmp_path):
    lens = TunedLens.for_model(gpt)
    other_seed = sharpen(make_tiny("tiny-gpt", seed=7))
    with pytest.raises(ProbeError, match="another model of the same shape"):
        logit_lens(other_seed, "the cat", lens=lens)
    deeper = make_tiny("tiny-gpt", layers=3)
    with pytest.raises(ProbeError, match=r"has 2 translators .* has 3 layers"):
        load_tuned_lens(lens.save(tmp_path / "lens"), deeper)
    with pytest.raises(ProbeError, match="must be a TunedLens"):
        logit_lens(gpt, "the cat", lens="runs/lens")
    with pytest.raises(ProbeError, match="No tuned lens at"):
        load_tuned_lens(tmp_path / "nothing-here")
    (tmp_path / "fake.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ProbeError, match="could not be read as a tuned lens"):
        load_tuned_lens(tmp_path / "fake.safetensors")


def test_a_translator_row_out_of_range_is_one_sentence(gpt):
    lens = TunedLens.for_model(gpt)
    states = torch.randn(3, gpt.model.config.hidden_size)
    assert torch.equal(lens.translate(lens.rows, states), states)  # the output row is never translated
    with pytest.raises(ProbeError, match="row -1 is out of range"):
        lens.translate(-1, states)


def test_the_tuned_lens_task_is_one_process_only_and_needs_a_language_model(gpt, tiny_classifier, tmp_path):
    with pytest.raises(ConfigError, match="runs in one process"):
        DistributedTrainer(gpt, "tuned-lens", TRAIN, config=_config(tmp_path), num_processes=2)
    with pytest.raises(Exception, match="kind='causal-lm' or kind='masked-lm'"):
        Trainer(tiny_classifier, "tuned-lens", TRAIN, config=_config(tmp_path))


def test_lens_quality_counts_the_positions_it_read(gpt, bert):
    causal = lens_quality(gpt, HELD_OUT)
    tokens = sum(len(gpt.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in HELD_OUT)
    assert causal.positions == tokens and causal.kl_tuned is None and causal.layers_better is None
    masked = lens_quality(bert, HELD_OUT, seed=3)
    assert 0 < masked.positions < tokens
    assert lens_quality(bert, HELD_OUT, seed=3).to_dict() == masked.to_dict()  # the masks are seeded
    with pytest.raises(ProbeError, match="list of held-out texts"):
        lens_quality(gpt, "one text")


def test_lens_cells_kl_is_zero_for_the_models_own_distribution(gpt):
    norm, head = final_norm_and_head(gpt.model)
    states = torch.randn(5, gpt.model.config.hidden_size)
    with torch.no_grad():
        target = torch.log_softmax(head(norm(states)), -1)
        kl = torch.cat([c.kl for c in lens_cells_kl(states, lambda h: head(norm(h)), target, torch.arange(5))])
    assert kl.abs().max() < 1e-5
