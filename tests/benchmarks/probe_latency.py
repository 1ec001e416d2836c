"""Probe latency: fill_mask against transformers' fill-mask pipeline, and next_token and the logit lens on SmolLM2.

    .venv/bin/python tests/benchmarks/probe_latency.py [--repeats 30]

``fill_mask`` and the pipeline run on the same ``tiny-bert`` (4 layers, hidden 256, trained
tokenizer on Shakespeare), interleaved, after a warm-up; ``next_token`` and ``logit_lens`` on
SmolLM2-135M with a 20-token prompt. Medians in milliseconds. The last line is JSON with
``fill_mask_ms``, ``pipeline_fill_mask_ms``, ``fill_mask_vs_pipeline``, ``next_token_ms`` and
``logit_lens_ms``. Goals (issue 7): fill_mask_vs_pipeline <= 0.9, next token under 150 ms and the
whole lens under 400 ms, so typing feels live.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROBE = "To be, or not to [MASK], that is the question."
PROMPT = "The Eiffel Tower is a famous landmark in the city of Paris, which is the capital of"


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - start))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    import torch
    from transformers import pipeline

    from workbench.data import load_corpus
    from workbench.explain import fill_mask, logit_lens, next_token
    from workbench.models import load_model

    torch.manual_seed(0)
    bert = load_model("tiny-bert", corpus=load_corpus("shakespeare"))
    bert.model.eval()
    pipe = pipeline("fill-mask", model=bert.model, tokenizer=bert.tokenizer, top_k=5, device=-1)
    pipe_text = PROBE.replace("[MASK]", bert.tokenizer.mask_token)
    ours_ms, theirs_ms = [], []
    for _ in range(5):  # warm-up
        fill_mask(bert, PROBE, 5), pipe(pipe_text)
    for _ in range(args.repeats):  # interleaved
        ours_ms += timed(lambda: fill_mask(bert, PROBE, 5), 1)
        theirs_ms += timed(lambda: pipe(pipe_text), 1)
    same = [p.token_ids for p in fill_mask(bert, PROBE, 5).predictions] == [[r["token"] for r in pipe(pipe_text)]]

    smollm = load_model("smollm2-135m")
    tokens = len(smollm.tokenizer(PROMPT)["input_ids"])
    for _ in range(3):
        next_token(smollm, PROMPT), logit_lens(smollm, PROMPT)
    next_ms = timed(lambda: next_token(smollm, PROMPT), max(5, args.repeats // 3))
    lens_ms = timed(lambda: logit_lens(smollm, PROMPT), max(5, args.repeats // 3))
    top = next_token(smollm, PROMPT, 1).tokens[0]

    result = {
        "fill_mask_ms": round(statistics.median(ours_ms), 2),
        "pipeline_fill_mask_ms": round(statistics.median(theirs_ms), 2),
        "fill_mask_vs_pipeline": round(statistics.median(ours_ms) / statistics.median(theirs_ms), 3),
        "fill_mask_same_top5_as_pipeline": same,
        "next_token_ms": round(statistics.median(next_ms), 1),
        "logit_lens_ms": round(statistics.median(lens_ms), 1),
        "smollm2_prompt_tokens": tokens,
        "smollm2_next_token": top,
        "torch_threads": torch.get_num_threads(),
        "goals": {"fill_mask_vs_pipeline": 0.9, "next_token_ms": 150, "logit_lens_ms": 400},
    }
    print(
        f"fill_mask {result['fill_mask_ms']} ms vs pipeline {result['pipeline_fill_mask_ms']} ms "
        f"(x{result['fill_mask_vs_pipeline']}); next_token {result['next_token_ms']} ms; "
        f"logit_lens {result['logit_lens_ms']} ms on {tokens} tokens"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
