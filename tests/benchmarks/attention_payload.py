"""What the attention explorer costs, against bertviz, on the real MiniLM and SmolLM2.

For MiniLM at 32, 64, 128, 256 and 512 tokens: seconds to compute the result and the view's
first payload (forward pass, statistics, thumbnails, rollout, the first head), bytes sent for
the first render and for each further head, and the size of bertviz's head-view HTML for the
same input. SmolLM2 (30 x 9 heads) at 256 tokens. The last line printed is JSON.

With ``--long``: the first render at 4,096 and 8,192 tokens (goal: at most 2 MiB at 4,096), and the
bytes of one window of rows and of one zoomed region, for a tiny model with SmolLM2's 30 layers x
9 heads (the payload depends on the length and the number of heads, not on the weights).

    .venv/bin/python tests/benchmarks/attention_payload.py [--skip-bertviz-512] [--long]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from workbench.explain import attention
from workbench.models import load_model
from workbench.ui import AttentionView, to_bertviz

TEXT = (
    "The movie opens on a quiet street where nothing much happens, and then, slowly, everything does. "
    "Critics called it patient; audiences called it slow. "
) * 40


def text_of(bundle, n: int) -> str:
    ids = bundle.tokenizer(TEXT, add_special_tokens=False)["input_ids"][: n - 2]
    return bundle.tokenizer.decode(ids)


def measure(bundle, n: int, bertviz: bool) -> dict:
    text = text_of(bundle, n)
    attention(bundle, text[:50])  # warm-up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        result = attention(bundle, text)
        view = AttentionView(result)
        best = min(best, time.perf_counter() - start)
    tokens = result.num_tokens
    row = {
        "tokens": tokens,
        "compute_seconds": round(best, 3),
        "first_render_bytes": view.first_render_bytes(),
        "bytes_per_head": tokens * 4 + tokens * tokens,
    }
    if bertviz:
        start = time.perf_counter()
        html = to_bertviz(result, "head").data
        row["bertviz_bytes"] = len(html.encode("utf-8"))
        row["bertviz_seconds"] = round(time.perf_counter() - start, 2)
        del html
    return row


def measure_long(lengths: tuple[int, ...] = (4096, 8192)) -> dict:
    """First-render, window and zoom bytes of the long view, on a tiny model shaped like SmolLM2."""
    corpus = [TEXT[i : i + 200] for i in range(0, 2000, 200)]
    bundle = load_model(
        "tiny-gpt", corpus=corpus, layers=30, hidden=36, heads=9, vocab_size=300, max_positions=max(lengths)
    )
    rows = {}
    for n in lengths:
        start = time.perf_counter()
        result = attention(bundle, TEXT * 4, max_tokens=n, keep_weights=False)
        view = AttentionView(result)
        seconds = time.perf_counter() - start
        view.window = {"layer": 29, "head": 8, "start": n // 2, "stop": n // 2 + 64}
        window_bytes = len(view.window_data)
        view.zoom = {"layer": 29, "head": 8, "q0": n // 2, "q1": n // 2 + 256, "k0": 0, "k1": 256}
        rows[str(result.num_tokens)] = {
            "first_render_bytes": view.first_render_bytes(),
            "window_bytes": window_bytes,
            "zoom_bytes": len(view.zoom_data),
            "seconds": round(seconds, 1),
        }
        print(f"long {n}: {rows[str(result.num_tokens)]}", file=sys.stderr, flush=True)
    return {"layers_x_heads": "30 x 9", "lengths": rows, "goals": {"first_render_bytes_4096": "<= 2,097,152"}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-bertviz-512", action="store_true", help="bertviz's 512-token page is ~0.9 GB")
    parser.add_argument("--long", action="store_true", help="only the long view at 4,096 and 8,192 tokens")
    args = parser.parse_args()
    if args.long:
        print(json.dumps(measure_long()))
        return
    minilm = load_model("minilm")
    rows = {}
    for n in (32, 64, 128, 256, 512):
        rows[n] = measure(minilm, n, bertviz=not (n == 512 and args.skip_bertviz_512))
        print(f"minilm {n}: {rows[n]}", file=sys.stderr, flush=True)
    smol = measure(load_model("smollm2-135m"), 256, bertviz=False)
    print(f"smollm2 256: {smol}", file=sys.stderr)
    r512 = rows[512]
    out = {
        "first_render_bytes_512": r512["first_render_bytes"],
        "bertviz_bytes_512": r512.get("bertviz_bytes"),
        "ratio_first_render_vs_bertviz_512": (
            round(r512["first_render_bytes"] / r512["bertviz_bytes"], 6) if r512.get("bertviz_bytes") else None
        ),
        "compute_seconds_512": r512["compute_seconds"],
        "minilm": {str(k): v for k, v in rows.items()},
        "smollm2_256": smol,
        "goals": {"first_render_bytes_512": "< 1,000,000", "compute_seconds_512": "<= 1.0"},
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
