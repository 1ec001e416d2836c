"""Fine-tune MiniLM with a classification head on the movie snippets; report held-out accuracy.

    .venv/bin/python tests/benchmarks/finetune_minilm.py [--epochs 2] [--batch-size 32]

The last line printed is JSON: accuracy, macro-F1, minutes, tokens/s, the precision used.
Goal (issue 3): validation accuracy of at least 0.80.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from workbench.data import load_labelled
from workbench.models import load_model
from workbench.training import TrainConfig, Trainer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()

    data = load_labelled("movie-snippets")
    train, val = data.split(validation=0.1, seed=0)
    bundle = load_model("minilm", kind="classifier", label_names=data.label_names)
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(
            output_dir=out,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            max_length=128,
            warmup_ratio=0.06,
            eval_every=None,
            log_every=20,
            precision=args.precision,
            metric_for_best="eval_accuracy",
        )
        start = time.perf_counter()
        trainer = Trainer(bundle, "classify", train, eval_data=val, config=config)
        history = trainer.fit()
        minutes = (time.perf_counter() - start) / 60
    final = history.eval[-1]
    tps = [r["tokens_per_second"] for r in history.train]
    print(
        json.dumps(
            {
                "accuracy": round(final["eval_accuracy"], 4),
                "macro_f1": round(final["eval_macro_f1"], 4),
                "eval_loss": round(final["eval_loss"], 4),
                "confusion_matrix": final["eval_confusion_matrix"],
                "train_examples": len(train),
                "validation_examples": len(val),
                "steps": trainer.state.step,
                "minutes": round(minutes, 2),
                "median_tokens_per_second": round(sorted(tps)[len(tps) // 2], 1),
                "precision": trainer.state.precision,
                "goal_accuracy": 0.80,
            }
        )
    )


if __name__ == "__main__":
    main()
