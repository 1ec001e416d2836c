"""Our SHAP route against shap's own pipeline route, on a fine-tuned MiniLM classifier.

    .venv/bin/python tests/benchmarks/attribution_speed.py [--repeats 3] [--max-evals 500]

One text each at 16, 32, 64 and 128 tokens (movie snippets joined). For each: both routes
once to warm up (numba compiles shap's code on first use), then ``repeats`` rounds, the two
routes interleaved. Reported per length: median seconds of each route, the evaluations each
made, the speed-up, and the Pearson correlation of the two routes' values. The last line is
JSON with ``speedup_128`` and ``pearson_min``. Goal (issue 6): speedup_128 >= 3, pearson_min >= 0.99.
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

LENGTHS = (16, 32, 64, 128)


def text_of_length(tokenizer, sentences: list[str], tokens: int) -> str:
    """Whole sentences joined, cut at a word so the text is ``tokens`` tokens long with [CLS] and [SEP]."""
    words = " ".join(sentences).split()
    lo, hi = 1, len(words)
    while lo < hi:  # the most words that fit
        mid = (lo + hi + 1) // 2
        if len(tokenizer(" ".join(words[:mid]))["input_ids"]) <= tokens:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-evals", type=int, default=500)
    parser.add_argument("--steps", type=int, default=300, help="fine-tuning steps of the cached classifier")
    args = parser.parse_args()

    import shap
    import transformers

    from workbench.data import load_labelled
    from workbench.explain import attribute
    from workbench.recipes import movie_sentiment_classifier

    bundle = movie_sentiment_classifier(args.steps, progress=False)
    bundle.model.eval()
    data = load_labelled("movie-snippets")
    rng = np.random.default_rng(0)
    sentences = [data.texts[i] for i in rng.permutation(len(data.texts))[:60]]
    pipe = transformers.pipeline(
        "text-classification", model=bundle.model, tokenizer=bundle.tokenizer, top_k=None, device=-1
    )

    def theirs(text: str) -> tuple[np.ndarray, float]:
        explainer = shap.Explainer(pipe, seed=0)
        np.random.seed(0)  # the Partition explainer breaks ties with numpy's global random numbers
        start = time.perf_counter()
        values = explainer([text], max_evals=args.max_evals, silent=True).values[0]  # (tokens, labels)
        return values, time.perf_counter() - start

    def ours(text: str) -> tuple[object, float]:
        start = time.perf_counter()
        result = attribute(bundle, text, method="shap", max_evals=args.max_evals, faithfulness=False)
        return result, time.perf_counter() - start

    rows = []
    for n in LENGTHS:
        text = text_of_length(bundle.tokenizer, sentences[n // 4 :], n)
        theirs(text), ours(text)  # warm-up
        t_theirs, t_ours = [], []
        for _ in range(args.repeats):
            values, seconds = theirs(text)
            t_theirs.append(seconds)
            result, seconds = ours(text)
            t_ours.append(seconds)
        reference = values[:, result.target]
        pearson = float(np.corrcoef(reference, result.scores.astype(np.float64))[0, 1])
        row = {
            "tokens": len(result.scores),
            "pipeline_s": round(statistics.median(t_theirs), 3),
            "ours_s": round(statistics.median(t_ours), 3),
            "speedup": round(statistics.median(t_theirs) / statistics.median(t_ours), 2),
            "ours_range_s": [round(min(t_ours), 3), round(max(t_ours), 3)],
            "pipeline_range_s": [round(min(t_theirs), 3), round(max(t_theirs), 3)],
            "evaluations_ours": result.evaluations,
            "masked_inputs": result.extra["masked_inputs"],
            "cache_hits": result.extra["cache_hits"],
            "pearson": round(pearson, 6),
        }
        rows.append(row)
        print(
            f"{row['tokens']:4d} tokens  pipeline {row['pipeline_s']:7.2f} s   ours {row['ours_s']:6.2f} s   "
            f"x{row['speedup']:.2f}   model rows {row['evaluations_ours']} of {row['masked_inputs']} masked inputs"
            f"   pearson {row['pearson']:.6f}",
            flush=True,
        )
    print(
        json.dumps(
            {
                "max_evals": args.max_evals,
                "repeats": args.repeats,
                "route": result.route,
                "lengths": rows,
                "speedup_128": rows[-1]["speedup"],
                "pearson_min": min(r["pearson"] for r in rows),
                "goal_speedup_128": 3.0,
                "goal_pearson_min": 0.99,
            }
        )
    )


if __name__ == "__main__":
    main()
