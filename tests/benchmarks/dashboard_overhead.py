"""Cost of the live dashboard: the same short training with and without it, interleaved and repeated.

The dashboard's comm is ipywidgets' stand-in (no kernel), so every trait change is serialised as
it would be for a browser but goes nowhere. A small model logs every step, so the dashboard is
asked to update as often as it ever would be. The last line printed is JSON; goal: ratio >= 0.99.

    .venv/bin/python tests/benchmarks/dashboard_overhead.py [--steps 150] [--repeats 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from workbench.data import load_corpus
from workbench.models import load_model
from workbench.training import TrainConfig, Trainer


def one_run(corpus, tokenizer, steps: int, with_dashboard: bool) -> tuple[float, int]:
    bundle = load_model("tiny-bert", tokenizer=tokenizer, layers=2, hidden=128, heads=4, seed=0)
    config = TrainConfig(max_steps=steps, batch_size=16, block_size=64, log_every=1, progress=False, seed=0)
    trainer = Trainer(bundle, "masked-lm", corpus, config=config)
    pushes = 0
    start = time.perf_counter()
    if with_dashboard:
        from workbench.ui import TrainingDashboard

        dashboard = TrainingDashboard()
        dashboard.run(trainer)  # background thread, as in a notebook
        dashboard.wait()
        pushes = dashboard.push_count
    else:
        trainer.start().wait()
    seconds = time.perf_counter() - start
    return trainer.state.tokens_seen / seconds, pushes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    corpus = load_corpus("shakespeare", max_chars=600_000)
    tokenizer = load_model("tiny-bert", corpus=corpus, layers=2, hidden=128, heads=4).tokenizer
    with_tps, without_tps, pushes = [], [], []
    one_run(corpus, tokenizer, 20, True)  # warm-up: imports, thread pool, first widget
    for r in range(args.repeats):
        for flag in (r % 2 == 0, r % 2 == 1):  # alternate which goes first
            tps, n = one_run(corpus, tokenizer, args.steps, flag)
            (with_tps if flag else without_tps).append(tps)
            if flag:
                pushes.append(n)
            print(f"round {r + 1} {'with' if flag else 'without'} dashboard: {tps:,.0f} tokens/s", file=sys.stderr)
    ratio = statistics.median(with_tps) / statistics.median(without_tps)
    print(
        json.dumps(
            {
                "ratio": round(ratio, 4),
                "with_tps": [round(x) for x in with_tps],
                "without_tps": [round(x) for x in without_tps],
                "pushes_per_run": pushes,
                "steps": args.steps,
                "goal": 0.99,
            }
        )
    )


if __name__ == "__main__":
    main()
