"""The fine-tuned MiniLM sentiment classifier, side by side in one run: original, int8, 50% pruned, ONNX.

For each: bytes of its weight files as saved, median CPU latency of one 64-token input
(this machine's threads; 2 cores here) over interleaved rounds, and accuracy on the
validation split the recipe held out (movie-snippets, 10%, seed 0). The last line is JSON
with ``int8_speedup``, ``int8_accuracy_drop`` and ``onnx_speedup``.

    .venv/bin/python tests/benchmarks/compression.py [--steps 300] [--rounds 5] [--repeats 20]
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

import numpy as np
import torch

from workbench.compress import export_onnx, prune, quantize
from workbench.compress.operations import weights_bytes
from workbench.compress.report import _predictions
from workbench.data import load_labelled
from workbench.recipes import movie_sentiment_classifier

LENGTH = 64


def _time_once(bundle, ids, mask, repeats: int) -> float:
    with torch.inference_mode():
        bundle.model(input_ids=ids, attention_mask=mask)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            bundle.model(input_ids=ids, attention_mask=mask)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300, help="fine-tuning steps of the recipe (cached)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    original = movie_sentiment_classifier(args.steps, progress=False)
    _, val = load_labelled("movie-snippets").split(validation=0.1, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            "original": original,
            "int8": quantize(original),
            "pruned_50": prune(original, 0.5),
            "onnx": export_onnx(original, f"{tmp}/onnx"),
        }
        generator = torch.Generator().manual_seed(0)
        ids = torch.randint(1000, len(original.tokenizer), (1, LENGTH), generator=generator)
        mask = torch.ones_like(ids)
        latency: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(args.rounds):  # interleaved, so drift in the machine's speed hits every contender alike
            for name, bundle in models.items():
                latency[name].append(_time_once(bundle, ids, mask, args.repeats))
        labels = np.asarray(val.labels)
        rows = {}
        for name, bundle in models.items():
            accuracy = float((_predictions(bundle, val.texts) == labels).mean())
            rows[name] = {
                "weights_mb": round(weights_bytes(bundle) / 1e6, 2),
                "latency_ms_64": round(statistics.median(latency[name]), 2),
                "accuracy": round(accuracy, 4),
            }
    base = rows["original"]
    for name, row in rows.items():
        print(
            f"{name:10} {row['weights_mb']:8.2f} MB  {row['latency_ms_64']:7.2f} ms @{LENGTH}  "
            f"accuracy {row['accuracy']:.4f}"
        )
    result = {
        "threads": torch.get_num_threads(),
        "validation_examples": len(val),
        "models": rows,
        "int8_speedup": round(base["latency_ms_64"] / rows["int8"]["latency_ms_64"], 3),
        "int8_accuracy_drop": round(base["accuracy"] - rows["int8"]["accuracy"], 4),
        "int8_size_ratio": round(rows["int8"]["weights_mb"] / base["weights_mb"], 3),
        "pruned_50_accuracy_drop": round(base["accuracy"] - rows["pruned_50"]["accuracy"], 4),
        "pruned_50_size_ratio": round(rows["pruned_50"]["weights_mb"] / base["weights_mb"], 3),
        "onnx_speedup": round(base["latency_ms_64"] / rows["onnx"]["latency_ms_64"], 3),
        "onnx_accuracy_drop": round(base["accuracy"] - rows["onnx"]["accuracy"], 4),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
