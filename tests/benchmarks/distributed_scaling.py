"""One process against two, side by side in one run, at the same global batch.

tiny-gpt (4 layers, hidden 256, 4 heads) learning Shakespeare as a causal LM, sequence 128,
global batch 32, fp32: one process with batch 32 (all the CPU's threads) against
``DistributedTrainer`` with two processes of batch 16 (one thread each, gloo), from the same
initial weights. Reports tokens per second of each (median over the timed log windows, the
first WARMUP steps left out) and how far apart their loss curves end. On a GPU machine the
same script compares one GPU with two. The last line printed is JSON.

    .venv/bin/python tests/benchmarks/distributed_scaling.py [--steps 40]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from workbench.data import load_corpus, token_blocks
from workbench.models import load_model
from workbench.training import DistributedTrainer, TrainConfig, Trainer

WARMUP = 5
GLOBAL_BATCH, SEQ = 32, 128


def _bundle(corpus):
    bundle = load_model("tiny-gpt", corpus=corpus, layers=4, hidden=256, heads=4, max_positions=512, seed=0)
    bundle.model.config.attention_dropout = 0.0
    return bundle


def _config(out, batch, steps):
    return TrainConfig(
        output_dir=out,
        batch_size=batch,
        max_steps=steps,
        block_size=SEQ,
        log_every=1,
        precision="fp32",
        progress=False,
        warmup_ratio=0.0,
    )


def _throughput(history) -> float:
    return statistics.median(r["tokens_per_second"] for r in history.train[WARMUP:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    corpus = load_corpus("shakespeare")
    bundle = _bundle(corpus)
    blocks = token_blocks(bundle.tokenizer, corpus, SEQ, add_special_tokens=False)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        one = Trainer(bundle, "causal-lm", blocks, config=_config(f"{tmp}/one", GLOBAL_BATCH, args.steps)).fit()
        one_wall = time.perf_counter() - start

        start = time.perf_counter()
        run = DistributedTrainer(
            _bundle(corpus),
            "causal-lm",
            blocks,
            config=_config(f"{tmp}/two", GLOBAL_BATCH // 2, args.steps),
            num_processes=2,
        )
        two = run.fit()
        two_wall = time.perf_counter() - start
    one_tps, two_tps = _throughput(one), _throughput(two)
    gap = max(abs(a - b) for a, b in zip(one.losses(), two.losses(), strict=True))
    result = {
        "steps": args.steps,
        "global_batch": GLOBAL_BATCH,
        "seq": SEQ,
        "cpu_count": os.cpu_count(),
        "one_process_tokens_per_s": round(one_tps),
        "two_processes_tokens_per_s": round(two_tps),
        "speedup": round(two_tps / one_tps, 3),
        "one_process_wall_s": round(one_wall, 1),
        "two_processes_wall_s": round(two_wall, 1),
        "final_loss_one": round(one.losses()[-1], 5),
        "final_loss_two": round(two.losses()[-1], 5),
        "max_loss_gap": float(f"{gap:.3g}"),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
