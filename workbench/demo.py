"""The headless demo (`make demo`, `workbench demo`): pretrain tiny-bert on Shakespeare and watch it learn.

It writes ``runs/demo/``: ``metrics.jsonl`` (every logged step), ``loss.png`` (the curves),
``probes.json`` (fill-mask top-5 for a few sentences before and after training) and the
checkpoints, and prints the probes side by side.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from workbench import assets

if TYPE_CHECKING:
    from workbench.explain import FillMaskResult
    from workbench.training import TrainingHistory

PROBES = [
    "my lord , i [MASK] you .",
    "what is your [MASK] , sir ?",
    "good night , sweet [MASK] .",
    "to be , or not to [MASK] , that is the question .",
    "i will [MASK] thee to the king .",
]


def run_demo(args: argparse.Namespace) -> int:
    """Fetch the assets, pretrain tiny-bert for ``args.steps`` steps, write and print what it learned."""
    from workbench.data import load_corpus
    from workbench.explain import fill_mask
    from workbench.models import load_model
    from workbench.training import TrainConfig, Trainer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.jsonl").unlink(missing_ok=True)
    for name in assets.ASSETS:
        start = time.perf_counter()
        assets.fetch(name)
        print(f"asset {name:16} ready ({time.perf_counter() - start:.1f} s)")

    corpus = load_corpus("shakespeare")
    print(f"corpus: {len(corpus):,} paragraphs, {corpus.num_chars:,} characters of Shakespeare")
    start = time.perf_counter()
    bundle = load_model("tiny-bert", corpus=corpus, seed=args.seed)
    print(f"model: {bundle!r}; tokenizer trained in {time.perf_counter() - start:.1f} s")

    before = [fill_mask(bundle, p, top_k=5) for p in PROBES]
    val = corpus.texts[: max(1, len(corpus) // 50)]
    train = corpus.texts[len(val) :]
    config = TrainConfig(
        output_dir=str(out),
        max_steps=args.steps,
        batch_size=32,
        block_size=64,
        learning_rate=1e-3,
        warmup_ratio=0.06,
        schedule="cosine",
        eval_every=max(1, args.steps // 6),
        eval_batches=8,
        save_every=max(1, args.steps // 2),
        seed=args.seed,
        log_every=10,
    )
    trainer = Trainer(bundle, "masked-lm", train, eval_data=val, config=config)
    trainer.fit()
    after = [fill_mask(bundle, p, top_k=5) for p in PROBES]

    probes = [
        {"text": p, "before": b.to_dict()["predictions"], "after": a.to_dict()["predictions"]}
        for p, b, a in zip(PROBES, before, after, strict=True)
    ]
    (out / "probes.json").write_text(json.dumps(probes, indent=2))
    _plot_losses(trainer.history, out / "loss.png")

    print("\nfill-mask, top-5 before -> after training:")
    for p, b, a in zip(PROBES, before, after, strict=True):
        print(f"  {p}")
        print(f"    before: {_top5(b)}")
        print(f"    after:  {_top5(a)}")
    evals = trainer.history.eval
    if evals:
        print(
            f"\neval loss {evals[0]['eval_loss']:.3f} -> {evals[-1]['eval_loss']:.3f}; "
            f"perplexity {evals[-1]['eval_perplexity']:.1f}"
        )
    print(f"{trainer.state.message}; wrote {out}/metrics.jsonl, loss.png, probes.json, checkpoints/")
    return 0


def _top5(result: FillMaskResult) -> str:
    pred = result.predictions[0]
    return "  ".join(f"{t.strip() or repr(t)} {p:.2f}" for t, p in zip(pred.tokens, pred.probabilities, strict=True))


def _plot_losses(history: TrainingHistory, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # headless: no display, no Jupyter
    import matplotlib.pyplot as plt

    train = history.train
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot([r["step"] for r in train], [r["loss"] for r in train], color="#9ecae1", label="train loss")
    ax.plot([r["step"] for r in train], [r["smoothed_loss"] for r in train], color="#08519c", label="smoothed")
    if history.eval:
        ax.plot(
            [r["step"] for r in history.eval],
            [r["eval_loss"] for r in history.eval],
            "o-",
            color="#d94801",
            label="eval loss",
        )
    ax.set_xlabel("step")
    ax.set_ylabel("masked-LM loss")
    ax.set_title("tiny-bert on Shakespeare")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
