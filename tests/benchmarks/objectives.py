"""Two papers' claims, reproduced small: ELECTRA against masked-LM at equal compute, and DistilBERT's student.

    .venv/bin/python tests/benchmarks/objectives.py [--quick] [--only electra|distill] [--seeds 3] [--threads N]

**ELECTRA** (Clark et al. 2020): replaced-token detection learns more per unit of compute than masked-LM.
A ``tiny-bert`` encoder (``--layers`` 4, ``--hidden`` 128, 2 heads; ModernBERT-style) is pretrained with
``"masked-lm"`` for ``--mlm-steps`` and, separately, as the discriminator of an ELECTRA pair
(``"replaced-token"``, its generator a quarter of its layers) for as many steps as give the same pretraining
FLOPs: each run's ``task.flops_per_token(block) × tokens seen`` (generator included), both reported. Both read
the same text: the Rotten Tomatoes corpus (movie plots and reviews, the domain of the fine-tuning data) with
every text that holds a held-out movie snippet removed (about 220 of the 1,057 held-out snippets appear in
it verbatim), so no evaluation text leaks into pretraining; its wordpiece tokenizer is trained on that text
too. Each pretrained encoder is then saved, loaded as a classifier and fine-tuned the same way (``"classify"``,
same steps, learning rate, seed and classifier-head initialisation) on the movie snippets' training split;
the score is accuracy on the held-out split (``split(validation=0.1, seed=0)``). A fresh, unpretrained
encoder fine-tuned the same way is the baseline. Seeds repeat the whole (pretraining and fine-tuning), the
objectives interleaved per seed.

**DistilBERT** (Sanh et al. 2019): a student keeps most of its teacher's accuracy at a fraction of its size.
The teacher is ``movie_sentiment_classifier(300)`` (MiniLM, 6 layers, fine-tuned on the same training split);
the student is ``every_other_layer(teacher)`` (layers 0, 2, 4), trained with ``"distill"`` on the training
split. Reported: teacher and student accuracy on the held-out split, their ratio (goal ≥ 0.97), the
student before distillation, a control (the same student fine-tuned on hard labels alone with ``"classify"``,
same steps and learning rate), and ``compare_models``'s size ratio, speedup at 64 tokens and mean attention
drift (student layer i against teacher layer 2i, over a few held-out snippets).

Everything runs in float32 (``precision="fp32"``) whatever the CPU: the machine's native bf16 support is
reported, not used, so runs on either kind of CPU compare. Other processes may share the CPU; wall times are
this run's. The last line is JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch
from machine import cpu_flags

PRECISION = "fp32"


@dataclass(frozen=True)
class Sizes:
    """What one mode runs: the encoder's shape, the step counts, the seeds."""

    layers: int
    hidden: int
    heads: int
    vocab_size: int
    block_size: int
    batch_size: int
    mlm_steps: int
    pretrain_lr: float
    finetune_steps: int
    finetune_lr: float
    seeds: int
    distill_steps: int
    distill_lr: float
    temperature: float
    hard_label_weight: float
    max_eval: int | None  # held-out examples scored (None: all)


def _sizes(args: argparse.Namespace) -> Sizes:
    quick = args.quick
    return Sizes(
        layers=args.layers or (2 if quick else 4),
        hidden=args.hidden or (64 if quick else 128),
        heads=2,
        vocab_size=8000,
        block_size=64,
        batch_size=32,
        mlm_steps=args.mlm_steps or (6 if quick else 600),  # 50 left every fine-tuned arm at chance
        pretrain_lr=1e-3,
        finetune_steps=args.finetune_steps or (5 if quick else 300),
        finetune_lr=5e-4,
        seeds=args.seeds or (1 if quick else 3),
        distill_steps=args.distill_steps or (4 if quick else 120),
        distill_lr=args.distill_lr,
        temperature=args.temperature,
        hard_label_weight=args.hard_label_weight,
        max_eval=128 if quick else None,
    )


def movie_snippets(sizes: Sizes) -> tuple:
    """(training split, held-out split as scored, the whole held-out split): ``split(validation=0.1, seed=0)``.

    A quick run scores an evenly spaced subset of the held-out split (both classes: it is stored class by class)."""
    from workbench.data import load_labelled

    train, val = load_labelled("movie-snippets").split(validation=0.1, seed=0)
    scored = val
    if sizes.max_eval and len(val) > sizes.max_eval:
        every = -(-len(val) // sizes.max_eval)
        scored = dataclasses.replace(val, texts=val.texts[::every], labels=val.labels[::every])
    return train, scored, val


def _summary(values: list[float]) -> dict:
    return {
        "mean": round(statistics.fmean(values), 4),
        "sd": round(statistics.stdev(values), 4) if len(values) > 1 else None,
        "per_seed": [round(v, 4) for v in values],
    }


# ------------------------------------------------------------------------------------ ELECTRA against masked-LM


def pretraining_text(held_out: list[str]) -> list[str]:
    """Rotten Tomatoes texts that contain none of the held-out snippets (case-insensitive)."""
    from workbench.data import load_corpus

    held = [t.strip().lower() for t in held_out]
    return [t for t in load_corpus("rotten-tomatoes").texts if not any(h in t.lower() for h in held)]


def _encoder(sizes: Sizes, kind: str, text: list[str], seed: int):
    from workbench.models import load_model

    return load_model(
        "tiny-bert",
        kind=kind,
        corpus=text,
        layers=sizes.layers,
        hidden=sizes.hidden,
        heads=sizes.heads,
        vocab_size=sizes.vocab_size,
        seed=seed,
    )


def _pretrain_config(sizes: Sizes, steps: int, seed: int):
    from workbench.training import TrainConfig

    return TrainConfig(
        max_steps=steps,
        batch_size=sizes.batch_size,
        block_size=sizes.block_size,
        learning_rate=sizes.pretrain_lr,
        precision=PRECISION,
        seed=seed,
        progress=False,
        log_every=max(1, steps // 5),
    )


def matched_electra_steps(sizes: Sizes, text: list[str]) -> tuple[int, float, float]:
    """(ELECTRA steps whose FLOPs match the masked-LM run's, masked-LM FLOPs/token, ELECTRA FLOPs/token).

    Both runs see ``batch_size × block_size`` tokens a step, so the steps scale by the FLOPs-per-token ratio."""
    from workbench.training.tasks import make_task

    config = _pretrain_config(sizes, 1, 0)
    mlm = make_task("masked-lm", _encoder(sizes, "masked-lm", text, 0), config).flops_per_token(sizes.block_size)
    electra = make_task("replaced-token", _encoder(sizes, "encoder", text, 0), config).flops_per_token(sizes.block_size)
    return max(1, round(sizes.mlm_steps * mlm / electra)), mlm, electra


def pretrain(sizes: Sizes, task: str, text: list[str], steps: int, seed: int) -> tuple[object, dict]:
    """Pretrain a fresh encoder with ``task``; return it and what the run cost (FLOPs counted by the task)."""
    from workbench.training import Trainer

    bundle = _encoder(sizes, "masked-lm" if task == "masked-lm" else "encoder", text, seed)
    trainer = Trainer(bundle, task, text, config=_pretrain_config(sizes, steps, seed))
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    losses = [r["loss"] for r in trainer.history.train]
    per_token = trainer.task.flops_per_token(sizes.block_size)
    return bundle, {
        "steps": trainer.state.step,
        "tokens": trainer.state.tokens_seen,
        "flops_per_token": per_token,
        "flops": per_token * trainer.state.tokens_seen,
        "seconds": seconds,
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }


def finetune(sizes: Sizes, bundle, train, val, seed: int) -> tuple[float, float]:
    """Save ``bundle``, load it back as a classifier (head drawn from ``seed``), fine-tune; (accuracy, seconds).

    Checks that the pretrained token embeddings arrived in the classifier (a silent re-initialisation would
    make every arm a no-pretraining baseline)."""
    from workbench.models import load_model
    from workbench.training import TrainConfig, Trainer

    with tempfile.TemporaryDirectory() as folder:
        bundle.save(folder)
        torch.manual_seed(seed)  # the classifier head's initialisation: the same in every arm of a seed
        classifier = load_model(folder, kind="classifier", label_names=train.label_names)
    before = bundle.model.get_input_embeddings().weight
    after = classifier.model.get_input_embeddings().weight
    if not torch.equal(before.detach().cpu(), after.detach().cpu()):
        raise RuntimeError(
            f"{bundle.name}'s pretrained embeddings did not reach the classifier loaded from its folder."
        )
    config = TrainConfig(
        max_steps=sizes.finetune_steps,
        batch_size=32,
        max_length=64,
        learning_rate=sizes.finetune_lr,
        precision=PRECISION,
        seed=seed,
        progress=False,
        log_every=max(1, sizes.finetune_steps // 5),
    )
    start = time.perf_counter()
    history = Trainer(classifier, "classify", train, eval_data=val, config=config).fit()
    return float(history.eval[-1]["eval_accuracy"]), time.perf_counter() - start


def electra_reproduction(sizes: Sizes) -> dict:
    train, val, whole_val = movie_snippets(sizes)
    text = pretraining_text(whole_val.texts)
    electra_steps, mlm_per_token, electra_per_token = matched_electra_steps(sizes, text)
    print(
        f"pretraining text: {len(text)} Rotten Tomatoes texts; masked-LM {sizes.mlm_steps} steps at "
        f"{mlm_per_token / 1e6:.2f} MFLOP/token, ELECTRA {electra_steps} steps at {electra_per_token / 1e6:.2f}",
        flush=True,
    )
    accuracy: dict[str, list[float]] = {"mlm": [], "electra": [], "no_pretraining": []}
    runs: dict[str, list[dict]] = {"mlm": [], "electra": []}
    finetune_seconds: list[float] = []
    for seed in range(sizes.seeds):
        # Alternate which objective goes first, so a change in the machine's load hits both alike.
        order = [("mlm", "masked-lm", sizes.mlm_steps), ("electra", "replaced-token", electra_steps)]
        for arm, task, steps in order if seed % 2 == 0 else order[::-1]:
            bundle, run = pretrain(sizes, task, text, steps, seed)
            score, seconds = finetune(sizes, bundle, train, val, seed)
            runs[arm].append(run)
            accuracy[arm].append(score)
            finetune_seconds.append(seconds)
            print(
                f"seed {seed} {arm}: pretrain {run['seconds']:.0f} s, loss {run['first_loss']:.3f} -> "
                f"{run['last_loss']:.3f}; fine-tuned accuracy {score:.4f}",
                flush=True,
            )
        score, seconds = finetune(sizes, _encoder(sizes, "encoder", text, seed), train, val, seed)
        accuracy["no_pretraining"].append(score)
        finetune_seconds.append(seconds)
        print(f"seed {seed} no pretraining: accuracy {score:.4f}", flush=True)
    flops = {arm: statistics.fmean(r["flops"] for r in runs[arm]) for arm in runs}
    gaps = [e - m for e, m in zip(accuracy["electra"], accuracy["mlm"], strict=True)]
    mlm, electra = _summary(accuracy["mlm"]), _summary(accuracy["electra"])
    winner = "electra" if electra["mean"] > mlm["mean"] else "mlm" if mlm["mean"] > electra["mean"] else "tie"
    return {
        "encoder": {"layers": sizes.layers, "hidden": sizes.hidden, "heads": sizes.heads, "kind": "tiny-bert"},
        "generator_layers": max(1, sizes.layers // 4),
        "pretraining_text": f"rotten-tomatoes minus texts holding a held-out snippet ({len(text)} texts)",
        "tokens_per_step": sizes.batch_size * sizes.block_size,
        "mlm_accuracy": mlm,
        "electra_accuracy": electra,
        "no_pretraining_accuracy": _summary(accuracy["no_pretraining"]),
        "electra_minus_mlm": _summary(gaps),
        "winner": winner,
        "pretrain_flops": {"mlm": flops["mlm"], "electra": flops["electra"]},
        "flops_ratio_electra_over_mlm": round(flops["electra"] / flops["mlm"], 4),
        "flops_per_token": {"mlm": mlm_per_token, "electra": electra_per_token},
        "pretrain_steps": {"mlm": sizes.mlm_steps, "electra": electra_steps},
        "pretrain_lr": sizes.pretrain_lr,
        "pretrain_seconds": {arm: round(statistics.fmean(r["seconds"] for r in runs[arm]), 1) for arm in runs},
        "pretrain_last_loss": {arm: [round(r["last_loss"], 3) for r in runs[arm]] for arm in runs},
        "finetune": {"steps": sizes.finetune_steps, "lr": sizes.finetune_lr, "batch_size": 32, "max_length": 64},
        "finetune_seconds_mean": round(statistics.fmean(finetune_seconds), 1),
        "validation_examples": len(val),
    }


# ------------------------------------------------------------------------------------ DistilBERT's student


def accuracy_of(bundle, data, batch_size: int = 64) -> float:
    """Share of ``data`` the classifier labels right (inputs cut at 128 tokens, as compare_models cuts them)."""
    predictions = []
    with torch.inference_mode():
        for i in range(0, len(data.texts), batch_size):
            inputs = bundle.tokenizer(
                data.texts[i : i + batch_size], return_tensors="pt", padding=True, truncation=True, max_length=128
            )
            predictions.append(bundle.model(**inputs).logits.argmax(-1).numpy())
    return float((np.concatenate(predictions) == np.asarray(data.labels)).mean())


def _student_config(sizes: Sizes):
    from workbench.training import TrainConfig

    return TrainConfig(
        max_steps=sizes.distill_steps,
        batch_size=32,
        max_length=64,
        learning_rate=sizes.distill_lr,
        warmup_ratio=0.06,
        temperature=sizes.temperature,
        hard_label_weight=sizes.hard_label_weight,
        precision=PRECISION,
        seed=0,
        progress=False,
        log_every=max(1, sizes.distill_steps // 5),
    )


def distill_reproduction(sizes: Sizes, *, control: bool) -> dict:
    from workbench.compress.distill import every_other_layer
    from workbench.compress.report import compare_models
    from workbench.recipes import movie_sentiment_classifier
    from workbench.training import Trainer

    train, val, _ = movie_snippets(sizes)
    teacher = movie_sentiment_classifier(300, progress=False)
    student = every_other_layer(teacher)
    before = accuracy_of(student, val)
    print(f"student before distillation: accuracy {before:.4f}", flush=True)
    start = time.perf_counter()
    trainer = Trainer(student, "distill", train, config=_student_config(sizes), teacher=teacher)
    trainer.fit()
    distill_seconds = time.perf_counter() - start
    student.model.eval()
    report = compare_models(teacher, student, val, val.texts[:4], lengths=(64,), repeats=30)
    teacher_accuracy = report.metric_values["original"]
    student_accuracy = report.metric_values["compressed"]
    ratio = student_accuracy / teacher_accuracy
    result = {
        "teacher": teacher.name,
        "student_layers": student.extra["distillation"]["layers"],
        "teacher_accuracy": round(teacher_accuracy, 4),
        "student_accuracy": round(student_accuracy, 4),
        "accuracy_ratio": round(ratio, 4),
        "goal_ratio": 0.97,
        "goal_met": ratio >= 0.97,
        "student_accuracy_before_distillation": round(before, 4),
        "prediction_agreement": round(report.prediction_agreement or 0.0, 4),
        "size_ratio": round(report.size_ratio, 4),
        "speedup_64": round(report.speedup(64), 3),
        "latency_ms_64": {k: round(v[64], 2) for k, v in report.latency_ms.items()},
        "attention_drift": round(report.attention_drift, 4),
        "attention_drift_per_layer": [round(float(v), 4) for v in report.attention_js.mean(axis=1)],
        "drift_layers": report.drift_layers,
        "drift_texts": len(report.texts),
        "distill": {
            "steps": trainer.state.step,
            "lr": sizes.distill_lr,
            "temperature": sizes.temperature,
            "hard_label_weight": sizes.hard_label_weight,
            "seconds": round(distill_seconds, 1),
            "last_soft_loss": trainer.history.train[-1].get("soft_loss"),
            "last_hard_loss": trainer.history.train[-1].get("hard_loss"),
        },
        "validation_examples": len(val),
    }
    if control:
        hard_only = every_other_layer(teacher)
        start = time.perf_counter()
        Trainer(hard_only, "classify", train, config=_student_config(sizes)).fit()
        hard_only.model.eval()
        result["hard_label_control"] = {
            "accuracy": round(accuracy_of(hard_only, val), 4),
            "seconds": round(time.perf_counter() - start, 1),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes, a few steps, one seed")
    parser.add_argument("--only", choices=("electra", "distill"))
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--layers", type=int)
    parser.add_argument("--hidden", type=int)
    parser.add_argument("--mlm-steps", type=int)
    parser.add_argument("--finetune-steps", type=int)
    parser.add_argument("--distill-steps", type=int)
    parser.add_argument("--distill-lr", type=float, default=1e-4)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--hard-label-weight", type=float, default=0.5)
    parser.add_argument("--no-control", action="store_true", help="skip the hard-label control student")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = _sizes(args)
    start = time.perf_counter()
    summary: dict = {"mode": "quick" if args.quick else "full"}
    if args.only in (None, "electra"):
        electra = electra_reproduction(sizes)
        print("electra", json.dumps(electra), flush=True)
        summary["electra"] = electra
        summary.update(
            mlm_accuracy=electra["mlm_accuracy"]["mean"],
            electra_accuracy=electra["electra_accuracy"]["mean"],
            pretrain_flops=electra["pretrain_flops"],
        )
    if args.only in (None, "distill"):
        distill = distill_reproduction(sizes, control=not args.no_control)
        print("distill", json.dumps(distill), flush=True)
        summary["distill"] = distill
        summary.update(
            student_teacher_accuracy_ratio=distill["accuracy_ratio"],
            size_ratio=distill["size_ratio"],
            speedup_64=distill["speedup_64"],
            attention_drift=distill["attention_drift"],
        )
    summary.update(
        cpu_flags(),
        threads=torch.get_num_threads(),
        precision=PRECISION,
        wall_seconds=round(time.perf_counter() - start, 1),
    )
    summary["precision_note"] = (
        f"fp32 throughout; this CPU {'has' if summary['native_bf16'] else 'lacks'} native bf16 (not used)"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
