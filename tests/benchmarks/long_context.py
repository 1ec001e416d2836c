"""Attention at SmolLM2's real lengths: time and memory of ``attention`` against the model's own forward.

For SmolLM2-135M at 1,024, 2,048, 4,096 and 8,192 tokens of Shakespeare, each measured in a fresh
process (peak memory is a property of a process), the lengths interleaved and repeated:

- ``forward_seconds``: the model's SDPA forward alone (no attention kept), in the same process;
- ``seconds`` and ``peak_rss_mb`` of ``attention(bundle, text)`` at the default memory budget, the
  peak resident memory sampled every 5 ms, over the process's memory just before the call;
- ``first_render_bytes``: what the browser receives to draw ``AttentionView`` the first time.

Goals at 4,096 tokens: ``attention_vs_forward`` <= 3, ``peak_rss_mb`` <= 1,024,
``first_render_bytes`` <= 2 MiB; at 8,192 the call completes within the same memory.

    .venv/bin/python tests/benchmarks/long_context.py [--lengths 1024 2048 4096 8192] [--repeats 2]

The last line is JSON. The CPU's bf16 support is reported but does not matter: everything runs in float32.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from machine import cpu_flags

ROOT = Path(__file__).resolve().parents[2]


def shakespeare_text(tokenizer, n: int) -> str:
    """About ``n`` tokens of one play, from its start."""
    from workbench.data import load_corpus

    corpus = load_corpus("shakespeare", max_chars=200_000)
    ids = tokenizer("\n".join(corpus.texts), add_special_tokens=False)["input_ids"]
    return str(tokenizer.decode(ids[: n - 1]))


class PeakRss:
    """The highest resident memory of this process while the block runs, in MB over the memory before it."""

    def __init__(self) -> None:
        import psutil

        self.process = psutil.Process()
        self.peak = 0.0

    def __enter__(self) -> PeakRss:
        self.base = self.process.memory_info().rss
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.done.wait(0.005):
            self.peak = max(self.peak, (self.process.memory_info().rss - self.base) / 2**20)

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, (self.process.memory_info().rss - self.base) / 2**20)


def child(n: int) -> dict:
    import gc

    import torch

    from workbench.explain import attention
    from workbench.explain.inputs import inference
    from workbench.models import load_model

    bundle = load_model("smollm2-135m")
    text = shakespeare_text(bundle.tokenizer, n)
    ids = bundle.tokenizer(text, return_tensors="pt")["input_ids"]
    attention(bundle, "Warm the kernels up.")
    gc.collect()
    with PeakRss() as memory:  # first: a forward before it would leave freed memory that hides its peak
        started = time.perf_counter()
        result = attention(bundle, text)
        seconds = time.perf_counter() - started
    with inference(bundle.model):
        started = time.perf_counter()
        bundle.model.base_model(input_ids=ids)
        forward_seconds = time.perf_counter() - started
    from workbench.ui import AttentionView

    view = AttentionView(result)
    return {
        "tokens": result.num_tokens,
        "seconds": round(seconds, 2),
        "forward_seconds": round(forward_seconds, 2),
        "attention_vs_forward": round(seconds / forward_seconds, 2),
        "peak_rss_mb": round(memory.peak),
        "first_render_bytes": view.first_render_bytes(),
        "kept_full_weights": result.full_weights is not None,
        "precision": result.maps.precision if result.maps is not None else "eager",
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    runs: dict[int, list[dict]] = {n: [] for n in args.lengths}
    for repeat in range(args.repeats):
        for n in args.lengths:  # interleaved: every length once per round
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(n)],
                capture_output=True,
                text=True,
                env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
                check=False,
            )
            if out.returncode != 0:
                runs[n].append({"error": out.stderr.strip().splitlines()[-1:] or [f"exit {out.returncode}"]})
            else:
                runs[n].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {repeat + 1}, {n} tokens: {runs[n][-1]}", file=sys.stderr)
    summary = {}
    for n, results in runs.items():
        good = [r for r in results if "error" not in r]
        if not good:
            summary[str(n)] = {"error": results[-1]["error"]}
            continue
        best = min(good, key=lambda r: r["seconds"])
        summary[str(n)] = {
            **best,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in good),
            "runs": len(good),
        }
    at = summary.get("4096", {})
    longest = summary.get("8192", {})
    goals = {
        "attention_vs_forward_le_3": at.get("attention_vs_forward", 99) <= 3,
        "peak_rss_mb_le_1024": at.get("peak_rss_mb", 1e9) <= 1024,
        "first_render_bytes_le_2MiB": at.get("first_render_bytes", 1e12) <= 2 * 2**20,
        "completes_at_8192_within_1024_mb": longest.get("peak_rss_mb", 1e9) <= 1024,
    }
    print(json.dumps({"benchmark": "long_context", **cpu_flags(), "lengths": summary, "goals": goals}))


if __name__ == "__main__":
    main()
