"""Activation patching on SmolLM2-135M: the fast route against the naive one, and attribution patching's fit.

    .venv/bin/python tests/benchmarks/patching_speed.py [--repeats 2] [--threads N]

Full residual-stream patching (``resid_post`` of all 30 layers at every position of a 15-token
prompt, 450 patched runs), clean "Tourists say that the Eiffel Tower is located in the city of"
against the same sentence with "the Colosseum" (the same number of tokens), metric
``logit_diff(" Paris", " Rome")`` at the last position. Both routes once to warm up, then
``repeats`` rounds, the two routes interleaved in one process. Reported:

- ``seconds``: the fast route (many patched copies per forward, each started at the layer it
  patches from the cached corrupted run, the output head only at the read position), median;
- ``naive_seconds`` and ``speedup_vs_naive``: one full forward per patched run;
- ``max_abs_diff_fast_vs_naive``: the largest difference of the two normalised maps;
- ``attribution_patching_pearson``: attribution patching of every head's output (one forward and
  one backward) against full patching of every head (30 x 9 patched runs), Pearson r over the map.

Goals (issue 17): speedup_vs_naive >= 4, seconds <= 15 on 2 cores, max_abs_diff_fast_vs_naive <= 1e-5,
attribution_patching_pearson >= 0.8 (reported as measured). The last line is JSON. The CPU's bf16
support is reported but does not matter: everything runs in float32. On a CPU that other processes
share, ``--threads 1`` keeps torch's threads from waiting on each other.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
from machine import cpu_flags

CLEAN = "Tourists say that the Eiffel Tower is located in the city of"
CORRUPTED = "Tourists say that the Colosseum is located in the city of"
ANSWERS = (" Paris", " Rome")


def timed(call):
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own, one per core)")
    args = parser.parse_args()

    import torch

    if args.threads:  # on a CPU shared with other work, 2 threads wait on each other: 1 measures the method
        torch.set_num_threads(args.threads)

    from workbench.explain.attribution_patching import attribution_patching
    from workbench.explain.patching import patch
    from workbench.models import load_model

    bundle = load_model("smollm2-135m")
    tokens = len(bundle.tokenizer(CLEAN)["input_ids"])

    def fast():
        return patch(bundle, CLEAN, CORRUPTED, ANSWERS, sites="resid_post")

    def naive():
        return patch(bundle, CLEAN, CORRUPTED, ANSWERS, sites="resid_post", route="naive")

    for route in ("fast", "naive"):  # warm-up: one layer at every position
        patch(bundle, CLEAN, CORRUPTED, ANSWERS, sites="resid_post.29", route=route)
    t_fast, t_naive, diffs = [], [], []
    for repeat in range(args.repeats):
        fast_result, seconds = timed(fast)
        t_fast.append(seconds)
        naive_result, seconds = timed(naive)
        t_naive.append(seconds)
        diffs.append(float(np.abs(fast_result.values - naive_result.values).max()))
        print(
            f"round {repeat + 1}: fast {t_fast[-1]:.2f} s, naive {t_naive[-1]:.2f} s, diff {diffs[-1]:.2e}", flush=True
        )

    heads, head_seconds = timed(lambda: patch(bundle, CLEAN, CORRUPTED, ANSWERS, sites="head"))
    estimate, attribution_seconds = timed(
        lambda: attribution_patching(bundle, CLEAN, CORRUPTED, ANSWERS, sites="head", against=heads)
    )
    resid_estimate = attribution_patching(bundle, CLEAN, CORRUPTED, ANSWERS, sites="resid_post", against=fast_result)
    seconds, naive_seconds = statistics.median(t_fast), statistics.median(t_naive)
    summary = {
        "benchmark": "patching_speed",
        **cpu_flags(),
        "threads": torch.get_num_threads(),
        "tokens": tokens,
        "layers": len(fast_result.layers),
        "patched_runs": len(fast_result.layers) * len(fast_result.columns),
        "clean_metric": round(fast_result.clean_metric, 4),
        "corrupted_metric": round(fast_result.corrupted_metric, 4),
        "seconds": round(seconds, 2),
        "naive_seconds": round(naive_seconds, 2),
        "fast_range_s": [round(min(t_fast), 2), round(max(t_fast), 2)],
        "naive_range_s": [round(min(t_naive), 2), round(max(t_naive), 2)],
        "speedup_vs_naive": round(naive_seconds / seconds, 2),
        "max_abs_diff_fast_vs_naive": max(diffs),
        "strongest_resid_post": fast_result.top(3),
        "head_patching_seconds": round(head_seconds, 2),
        "attribution_patching_seconds": round(attribution_seconds, 2),
        "attribution_patching_pearson": round(estimate.pearson_r, 4) if estimate.pearson_r is not None else None,
        "attribution_patching_pearson_resid_post": (
            round(resid_estimate.pearson_r, 4) if resid_estimate.pearson_r is not None else None
        ),
        "strongest_heads": heads.top(3),
        "repeats": args.repeats,
    }
    summary["goals"] = {
        "speedup_vs_naive_ge_4": summary["speedup_vs_naive"] >= 4,
        "seconds_le_15": summary["seconds"] <= 15,
        "max_abs_diff_le_1e-5": summary["max_abs_diff_fast_vs_naive"] <= 1e-5,
        "attribution_patching_pearson_ge_0.8": (summary["attribution_patching_pearson"] or 0) >= 0.8,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
