"""The tuned lens against the logit lens, per layer, on held-out text; and what training it costs.

    .venv/bin/python tests/benchmarks/tuned_lens.py [--smollm2-steps 90] [--tiny-steps 150] [--only tiny-gpt]

Two models, each with a lens trained by the Trainer's "tuned-lens" task:

- ``tiny-gpt``, first pretrained here on Shakespeare (``--pretrain-steps`` of 8 blocks of 128 tokens, not
  counted in the lens's time), its lens trained on the same training texts, read on the first 400 lines of
  the held-out last 5% of the plays;
- SmolLM2-135M, its lens trained on Rotten Tomatoes, read on the held-out last 60 reviews.

Reported per model: ``kl_logit`` and ``kl_tuned`` (mean KL from the model's output, nats, per row:
embeddings, layer 1, ...; the last row is the output itself), ``perplexity_logit`` and ``perplexity_tuned``,
``layers_better`` (the share of rows, the output excluded, where the tuned lens has lower KL; goal 1.0)
and ``train_minutes`` (the lens's training run, wall clock; goals: ≤ 2 for tiny-gpt, ≤ 15 for SmolLM2
on 2 cores). The lens runs in float32 wherever it is (``precision="fp32"``): on a CPU without native bf16
(AVX2 only) bf16 would be ~170× slower, and with it the comparison would mix precisions; the CPU's bf16
support is reported anyway. With ``--pictures docs/images`` the per-layer comparison is drawn for the
README (matplotlib); ``--redraw saved.log --pictures docs/images`` redraws it from a run's saved output.
The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from machine import cpu_flags


def lens_run(bundle, train_texts, held_out, *, steps, batch_size, lens_positions, learning_rate, block_size):
    """Train a lens on ``train_texts`` for ``steps``; read ``held_out`` through both lenses."""
    from workbench.explain import lens_quality
    from workbench.training import TrainConfig, Trainer

    config = TrainConfig(
        max_steps=steps,
        batch_size=batch_size,
        block_size=block_size,
        lens_positions=lens_positions,
        learning_rate=learning_rate,
        precision="fp32",
        progress=False,
        log_every=10,
    )
    trainer = Trainer(bundle, "tuned-lens", train_texts, config=config)
    start = time.perf_counter()
    trainer.fit()
    minutes = (time.perf_counter() - start) / 60
    quality = lens_quality(bundle, held_out, trainer.task.lens, max_length=block_size)
    losses = [r["loss"] for r in trainer.history.records if r.get("kind") == "train"]
    return quality, {
        "train_minutes": round(minutes, 2),
        "steps": steps,
        "batch_size": batch_size,
        "lens_positions": lens_positions,
        "first_loss": round(losses[0], 4),
        "last_loss": round(losses[-1], 4),
        "layers_better": quality.layers_better,
        "kl_logit": [round(float(v), 4) for v in quality.kl_logit],
        "kl_tuned": [round(float(v), 4) for v in quality.kl_tuned],
        "perplexity_logit": [round(float(v), 2) for v in quality.perplexity_logit],
        "perplexity_tuned": [round(float(v), 2) for v in quality.perplexity_tuned],
        "held_out_positions": quality.positions,
    }


def tiny_gpt(args) -> tuple:
    from workbench.data import load_corpus
    from workbench.models import load_model
    from workbench.training import TrainConfig, Trainer

    corpus = load_corpus("shakespeare")
    cut = int(len(corpus.texts) * 0.95)
    train, held_out = corpus.texts[:cut], corpus.texts[cut:][:400]
    bundle = load_model("tiny-gpt", corpus=corpus)
    pretrain = TrainConfig(max_steps=args.pretrain_steps, batch_size=8, learning_rate=1e-3, progress=False)
    start = time.perf_counter()
    Trainer(bundle, "causal-lm", train, config=pretrain).fit()
    pretrain_minutes = (time.perf_counter() - start) / 60
    options = {"batch_size": 16, "lens_positions": 32, "learning_rate": 1e-3, "block_size": 128}
    quality, report = lens_run(bundle, train, held_out, steps=args.tiny_steps, **options)
    return quality, {**report, "pretrain_steps": args.pretrain_steps, "pretrain_minutes": round(pretrain_minutes, 2)}


def smollm2(args) -> tuple:
    from workbench.data import load_corpus
    from workbench.models import load_model

    texts = load_corpus("rotten-tomatoes").texts
    train, held_out = texts[:-60], texts[-60:]
    bundle = load_model("smollm2-135m")
    return lens_run(
        bundle,
        train,
        held_out,
        steps=args.smollm2_steps,
        batch_size=args.smollm2_batch,
        lens_positions=args.smollm2_positions,
        learning_rate=args.learning_rate,
        block_size=128,
    )


def picture(reports: dict, folder: Path) -> None:
    """The per-layer KL of both lenses, one panel per model, for the README (from the reports' numbers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(reports), figsize=(5.6 * len(reports), 3.8), squeeze=False)
    for ax, (name, report) in zip(axes[0], reports.items(), strict=True):
        rows = range(len(report["kl_logit"]) - 1)  # the output row's KL is 0 by definition
        ax.plot(rows, report["kl_logit"][:-1], "o-", color="#b2182b", label="logit lens", markersize=3)
        tuned = f"tuned lens ({report['steps']} steps, {report['train_minutes']:.1f} min)"
        ax.plot(rows, report["kl_tuned"][:-1], "o-", color="#2166ac", label=tuned, markersize=3)
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("layer (0 = embeddings)")
        ax.set_ylabel("KL to the model's output (nats)")
        better = round(report["layers_better"] * (len(report["kl_logit"]) - 1))
        ax.set_title(f"{name}: tuned lens lower at {better} of {len(report['kl_logit']) - 1} layers", fontsize=10)
        ax.legend(frameon=False, fontsize=9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / "tuned_lens.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("tiny-gpt", "smollm2"))
    parser.add_argument("--pretrain-steps", type=int, default=250)
    parser.add_argument("--tiny-steps", type=int, default=150)
    parser.add_argument("--smollm2-steps", type=int, default=90)
    parser.add_argument("--smollm2-batch", type=int, default=4)
    parser.add_argument("--smollm2-positions", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--pictures", type=Path, help="write tuned_lens.png here")
    parser.add_argument("--redraw", type=Path, help="only redraw the picture from a run's saved last line (JSON)")
    args = parser.parse_args()
    if args.redraw:
        saved = json.loads(args.redraw.read_text().strip().splitlines()[-1])
        picture(
            {name: saved[name] for name in ("tiny-gpt", "SmolLM2-135M") if name in saved}, args.pictures or Path(".")
        )
        return
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    results = {}
    if args.only in (None, "tiny-gpt"):
        results["tiny-gpt"] = tiny_gpt(args)
        print("tiny-gpt", json.dumps(results["tiny-gpt"][1]), flush=True)
    if args.only in (None, "smollm2"):
        results["SmolLM2-135M"] = smollm2(args)
        print("SmolLM2-135M", json.dumps(results["SmolLM2-135M"][1]), flush=True)
    if args.pictures:
        picture({name: report for name, (_, report) in results.items()}, args.pictures)
    summary = {name: report for name, (_, report) in results.items()}
    if "tiny-gpt" in summary:
        summary["train_minutes_tiny_gpt"] = summary["tiny-gpt"]["train_minutes"]
    if "SmolLM2-135M" in summary:
        summary["train_minutes_smollm2"] = summary["SmolLM2-135M"]["train_minutes"]
    better = [report["layers_better"] for _, report in results.values()]
    summary["layers_better"] = min(better)
    summary.update(cpu_flags(), threads=torch.get_num_threads(), precision="fp32")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
