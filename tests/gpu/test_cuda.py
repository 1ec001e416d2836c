"""The Trainer and the explain calls on a CUDA device: mixed precision, resume, Stop, and CPU agreement."""

from __future__ import annotations

import threading

import pytest
import torch

from workbench.explain import attention, attribute
from workbench.models import load_model
from workbench.training import Callback, TrainConfig, Trainer
from workbench.training.checkpoint import latest_checkpoint

SMALL = {"layers": 2, "hidden": 64, "heads": 2, "vocab_size": 400, "max_positions": 64}
QUIET = {"progress": False, "block_size": 32, "batch_size": 8, "log_every": 1, "device": "cuda"}


def _config(**kw: object) -> TrainConfig:
    return TrainConfig(**{**QUIET, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_causal_lm_loss_falls_on_cuda_in_mixed_precision(corpus, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    bundle = load_model("tiny-gpt", corpus=corpus, **SMALL)
    config = _config(max_steps=60, learning_rate=3e-3, precision=precision)
    trainer = Trainer(bundle, "causal-lm", corpus, config=config)
    history = trainer.fit()
    losses = history.losses()
    assert trainer.precision == precision
    assert next(bundle.model.parameters()).device.type == "cuda"
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5


def test_resume_on_cuda_continues_the_same_run(corpus, tmp_path):
    straight = load_model("tiny-gpt", corpus=corpus, **SMALL)
    first = Trainer(straight, "causal-lm", corpus, config=_config(max_steps=20, precision="fp32", seed=1)).fit()

    halves = load_model("tiny-gpt", corpus=corpus, **SMALL)
    Trainer(
        halves, "causal-lm", corpus, config=_config(max_steps=10, precision="fp32", seed=1, output_dir=str(tmp_path))
    ).fit()
    resumed_bundle = load_model("tiny-gpt", corpus=corpus, **SMALL)
    resumed = Trainer(
        resumed_bundle,
        "causal-lm",
        corpus,
        config=_config(max_steps=20, precision="fp32", seed=1, output_dir=str(tmp_path)),
    )
    resumed.resume_from(latest_checkpoint(tmp_path))
    second = resumed.fit()
    assert second.losses()[-1] == pytest.approx(first.losses()[-1], rel=1e-3, abs=1e-3)


def test_stop_from_another_thread_saves_and_ends_the_run_on_cuda(corpus, tmp_path):
    bundle = load_model("tiny-gpt", corpus=corpus, **SMALL)
    reached = threading.Event()

    class Signal(Callback):
        def on_step_end(self, trainer, state, control):  # type: ignore[no-untyped-def]
            if state.step >= 5:
                reached.set()

    trainer = Trainer(
        bundle,
        "causal-lm",
        corpus,
        callbacks=[Signal()],
        config=_config(max_steps=100_000, precision="fp32", output_dir=str(tmp_path)),
    )
    job = trainer.start()
    assert reached.wait(120), "the run on CUDA did not reach step 5 in two minutes"
    trainer.stop()
    job.wait()
    saved = latest_checkpoint(tmp_path)
    assert saved is not None and trainer.state.step < 100_000


def _cpu_and_cuda(corpus: list[str], kind: str, tmp_path) -> tuple:  # type: ignore[no-untyped-def]
    name = "tiny-bert" if kind != "causal-lm" else "tiny-gpt"
    bundle = load_model(name, corpus=corpus, **SMALL)
    bundle.save(tmp_path / "model")
    return load_model(str(tmp_path / "model"), device="cpu"), load_model(str(tmp_path / "model"), device="cuda")


def test_attention_on_cuda_equals_cpu(corpus, tmp_path):
    cpu, cuda = _cpu_and_cuda(corpus, "masked-lm", tmp_path)
    text = corpus[3] + " " + corpus[40]
    a, b = attention(cpu, text), attention(cuda, text)
    assert a.weights.shape == b.weights.shape
    assert abs(a.weights - b.weights).max() < 1e-4


@pytest.mark.parametrize("method", ["gradient_x_input", "integrated_gradients", "occlusion"])
def test_attributions_on_cuda_equal_cpu(corpus, tmp_path, method):
    cpu, cuda = _cpu_and_cuda(corpus, "causal-lm", tmp_path)
    text = corpus[7]
    a, b = attribute(cpu, text, method=method), attribute(cuda, text, method=method)
    assert a.scores.shape == b.scores.shape
    assert abs(a.scores - b.scores).max() < 1e-3 * max(1.0, float(abs(a.scores).max()))
