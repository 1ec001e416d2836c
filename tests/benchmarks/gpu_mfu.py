"""Model FLOPs utilisation of the Trainer on a CUDA device, for a GPT-2-small-sized causal LM.

12 layers, hidden 768, 12 heads, 1,024 positions, bf16 autocast (fp16 where the GPU has no bf16).
The model FLOPs are counted per token by the Trainer's own ``flops_per_token`` (PaLM's appendix B:
6 x the weights that multiply, the vocabulary head where it runs, 12 x layers x hidden x sequence
for attention; embedding look-ups count nothing) and divided by
the device's dense bf16 peak from its data sheet. The Trainer's own figure (its ``mfu`` record)
is printed beside a plain PyTorch loop on the same model, batch and precision, measured
interleaved, so the Trainer's overhead shows. Goal: at least 50% of the bf16 peak.

Run: ``.venv/bin/python tests/benchmarks/gpu_mfu.py [--steps 30] [--batch 8]``. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import string
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch


def _corpus(words: int = 400_000, seed: int = 0) -> str:
    """Synthetic text with a large vocabulary of made-up words: enough for a 32k tokenizer, no download."""
    rng = random.Random(seed)
    lexicon = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(60_000)]
    return " ".join(rng.choice(lexicon) for _ in range(words))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--smoke", action="store_true", help="a 2-layer model on the CPU in fp32: checks the script, measures nothing"
    )
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.smoke:
        print(json.dumps({"skipped": "no CUDA device on this machine (--smoke runs the script on the CPU)"}))
        return

    from workbench.models import load_model
    from workbench.training import TrainConfig, Trainer
    from workbench.training.metrics import flops_per_token, parameter_split, peak_flops

    device = torch.device("cpu" if args.smoke else "cuda")
    if args.smoke:
        precision, seq, size = "fp32", 64, {"layers": 2, "hidden": 64, "heads": 2, "vocab_size": 2_000}
        text = _corpus(words=20_000)
    else:
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        seq, size = 1024, {"layers": 12, "hidden": 768, "heads": 12, "vocab_size": 32_000}  # GPT-2 small's shape
        text = _corpus()
    chunks = [text[i : i + 20_000] for i in range(0, len(text), 20_000)]
    bundle = load_model("tiny-gpt", corpus=chunks, max_positions=seq, **size)
    vocab = bundle.model.config.vocab_size
    split = parameter_split(bundle.model)
    # the Trainer's own count: weights and the head at every position, attention; embeddings count nothing
    flops = flops_per_token(bundle.model, seq)
    peak = peak_flops(device, precision)

    def trainer_run() -> float:
        cfg = TrainConfig(
            max_steps=args.steps,
            batch_size=args.batch,
            block_size=seq,
            precision=precision,
            progress=False,
            log_every=5,
            device=device.type,
            learning_rate=3e-4,
        )
        history = Trainer(bundle, "causal-lm", chunks, config=cfg).fit()
        rates = [r["tokens_per_second"] for r in history.train if r.get("tokens_per_second")]
        return statistics.median(rates[1:] or rates)

    def plain_run() -> float:
        model = bundle.model.to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        scaler = torch.amp.GradScaler(enabled=precision == "fp16")
        ids = torch.randint(0, vocab, (args.batch, seq), device=device)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        times = []
        for step in range(args.steps):
            sync()
            start = time.perf_counter()
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = model(input_ids=ids, labels=ids).loss
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            sync()
            if step >= 3:
                times.append(time.perf_counter() - start)
        return args.batch * seq / statistics.median(times)

    trainer_rates, plain_rates = [], []
    for _ in range(args.repeats):  # interleaved
        trainer_rates.append(trainer_run())
        plain_rates.append(plain_run())
    trainer_tps, plain_tps = statistics.median(trainer_rates), statistics.median(plain_rates)
    result = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu (smoke run: measures nothing)",
        "precision": precision,
        "parameters": bundle.num_parameters,
        "body_parameters": split.body,
        "head_parameters": split.head,
        "vocab_size": vocab,
        "sequence": seq,
        "batch": args.batch,
        "flops_per_token": flops,
        "peak_flops": peak,
        "trainer_tokens_per_second": round(trainer_tps, 1),
        "plain_pytorch_tokens_per_second": round(plain_tps, 1),
        "trainer_mfu": round(trainer_tps * flops / peak, 4) if peak else None,
        "plain_pytorch_mfu": round(plain_tps * flops / peak, 4) if peak else None,
        "goal_mfu": 0.5,
    }
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
