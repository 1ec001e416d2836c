"""``workbench ...``: the workbench's jobs from a terminal, with no Jupyter in sight."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError

if TYPE_CHECKING:  # names for the annotations only: the command starts without loading torch
    from workbench.data import Corpus, LabelledData
    from workbench.models import ModelKind
    from workbench.training.config import TaskName, TrainConfig
    from workbench.training.loop import Trainer


def _assets_list(args: argparse.Namespace) -> int:
    from workbench import assets

    rows = assets.list_assets()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':16} {'kind':8} {'size':>8}  {'cached':6}  source")
    for r in rows:
        print(f"{r['name']:16} {r['kind']:8} {r['size_mb']:>6.1f}MB  {'yes' if r['cached'] else 'no':6}  {r['source']}")
        print(f"{'':16} {r['description']}")
    print(f"cache: {assets.cache_dir()}")
    return 0


def _assets_fetch(args: argparse.Namespace) -> int:
    from workbench import assets

    names = list(assets.ASSETS) if args.all else args.names
    if not names:
        raise WorkbenchError("Name at least one asset to fetch, or pass --all; `workbench assets list` shows them.")
    for name in names:
        start = time.perf_counter()
        path = assets.fetch(name)
        print(f"{name}: {path} ({time.perf_counter() - start:.1f} s)")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from workbench.demo import run_demo

    return run_demo(args)


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """Every TrainConfig field as a flag of the same name (``--learning-rate``)."""
    import dataclasses
    import typing

    from workbench.training.config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        hint = str(hints[f.name])
        if "bool" in hint:
            parser.add_argument(flag, type=_parse_bool, default=argparse.SUPPRESS, metavar="true|false")
        elif "int" in hint and "float" not in hint:
            parser.add_argument(flag, type=_parse_optional(int), default=argparse.SUPPRESS)
        elif "float" in hint:
            parser.add_argument(flag, type=_parse_optional(float), default=argparse.SUPPRESS)
        else:
            parser.add_argument(flag, type=_parse_optional(str), default=argparse.SUPPRESS)


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parse_optional(kind: Callable[[str], object]) -> Callable[[str], object]:
    def parse(text: str) -> object:
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = getattr(kind, "__name__", "value")  # argparse names the type in its error message
    return parse


# The kind of model each pretraining task loads when --kind is not given: the pair tasks train jointly with
# masked-LM as in BERT (--kind encoder trains the pair head alone); ELECTRA's discriminator is an encoder.
_PRETRAIN_KINDS: dict[str, ModelKind] = {
    "masked-lm": "masked-lm",
    "causal-lm": "causal-lm",
    "next-sentence": "masked-lm",
    "sentence-order": "masked-lm",
    "replaced-token": "encoder",
}


def _config(args: argparse.Namespace, task: str) -> TrainConfig:
    import dataclasses

    from workbench.training.config import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values.setdefault("output_dir", f"runs/{task}")
    return TrainConfig.from_dict(values)


def _corpus_split(args: argparse.Namespace) -> tuple[Corpus, list[str], list[str]]:
    """The corpus, and its training and held-out texts (the first ``eval_fraction`` of its documents)."""
    from workbench.data import load_corpus

    corpus = load_corpus(args.data)
    n_val = max(1, int(len(corpus) * args.eval_fraction))
    return corpus, corpus.texts[n_val:], corpus.texts[:n_val]


def _train(args: argparse.Namespace, task: TaskName) -> int:
    from workbench.models import load_model
    from workbench.training.loop import Trainer

    config = _config(args, task)
    train: LabelledData | list[str]
    val: LabelledData | list[str]
    if task == "classify":
        from workbench.data import load_labelled

        data = load_labelled(args.data)
        train, val = data.split(validation=args.eval_fraction, seed=config.seed)
        bundle = load_model(args.model, kind="classifier", label_names=data.label_names)
    else:
        corpus, train, val = _corpus_split(args)
        preset = args.model in ("tiny-bert", "tiny-gpt")
        if task == "tuned-lens":  # the lens reads a trained language model as it is: its own kind
            bundle = load_model(args.model, corpus=corpus if preset else None)
        else:
            kind: ModelKind = getattr(args, "kind", None) or _PRETRAIN_KINDS[task]
            bundle = load_model(args.model, kind=kind, corpus=corpus if preset else None)
    return _fit(Trainer(bundle, task, train, eval_data=val, config=config), args)


def _distill(args: argparse.Namespace) -> int:
    from workbench.compress.distill import PRESET_STUDENTS, every_other_layer, preset_student
    from workbench.models import load_model
    from workbench.training.loop import Trainer

    config = _config(args, "distill")
    teacher = load_model(args.teacher)
    train: LabelledData | list[str]
    val: LabelledData | list[str]
    if teacher.kind == "classifier":
        from workbench.data import load_labelled

        train, val = load_labelled(args.data).split(validation=args.eval_fraction, seed=config.seed)
    else:
        _, train, val = _corpus_split(args)
    if args.student == "every-other-layer":
        student = every_other_layer(teacher)
    elif args.student in PRESET_STUDENTS:
        student = preset_student(teacher, args.student, layers=args.student_layers)
    else:
        student = load_model(args.student, kind=teacher.kind)
    return _fit(Trainer(student, "distill", train, eval_data=val, config=config, teacher=teacher), args)


def _fit(trainer: Trainer, args: argparse.Namespace) -> int:
    if args.resume:
        trainer.resume_from()
    trainer.fit()
    if trainer.is_main:  # under `accelerate launch` every process trains; one reports
        print(
            json.dumps(
                {
                    "status": trainer.state.status,
                    "step": trainer.state.step,
                    "processes": trainer.world,
                    "eval": trainer.history.eval[-1] if trainer.history.eval else None,
                    "checkpoint": trainer.state.last_checkpoint,
                },
                default=str,
            )
        )
    return 0 if trainer.state.status in ("finished", "stopped") else 1


_DEFAULT_TEXTS = {
    "classifier": ["The movie was slow, but the ending made it worth the wait."],
    "causal-lm": ["The capital of France is"],
    "masked-lm": ["The capital of France is [MASK]."],
    "encoder": ["The movie was slow, but the ending made it worth the wait."],
}


def _compress(args: argparse.Namespace) -> int:
    from workbench.compress import compare_models, export_onnx, prune, quantize
    from workbench.models import load_model

    bundle = load_model(args.model)
    out = args.out
    if args.method == "quantize":
        compressed = quantize(bundle)
    elif args.method == "prune":
        compressed = prune(bundle, args.amount, structured=args.structured)
    else:
        compressed = export_onnx(bundle, out)
    if args.method != "onnx":
        compressed.save(out)
    eval_data: LabelledData | list[str] | None = None
    if args.data:
        if bundle.kind == "classifier":
            from workbench.data import load_labelled

            # The validation split `workbench finetune` holds out (same fraction, seed 0).
            eval_data = load_labelled(args.data).split(validation=args.eval_fraction, seed=0)[1]
        else:
            from workbench.data import load_corpus

            texts = load_corpus(args.data).texts
            eval_data = texts[: max(1, int(len(texts) * args.eval_fraction))]  # what `workbench pretrain` holds out
    texts = args.text or _DEFAULT_TEXTS[bundle.kind]
    report = compare_models(
        bundle, compressed, eval_data=eval_data, texts=texts, lengths=args.lengths, max_eval=args.eval_size
    )
    print(json.dumps(report.to_dict(), default=str) if args.json else f"{report}\nsaved: {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Train and explain transformer language models.")
    sub = parser.add_subparsers(dest="command", required=True)

    a = sub.add_parser("assets", help="list or fetch the real models and data sets").add_subparsers(
        dest="assets_command", required=True
    )
    lst = a.add_parser("list", help="list the assets and whether they are cached")
    lst.add_argument("--json", action="store_true", help="print JSON instead of a table")
    lst.set_defaults(func=_assets_list)
    fetch = a.add_parser("fetch", help="download, verify and unpack assets into the cache")
    fetch.add_argument("names", nargs="*", help="asset names (see `workbench assets list`)")
    fetch.add_argument("--all", action="store_true", help="fetch every asset")
    fetch.set_defaults(func=_assets_fetch)

    demo = sub.add_parser("demo", help="the headless demo on the embedded default assets")
    demo.add_argument("--out", default="runs/demo", help="folder for the demo's outputs")
    demo.add_argument("--steps", type=int, default=600, help="training steps (about 3 minutes on 2 cores)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)

    pre = sub.add_parser(
        "pretrain",
        help="pretrain a model on a corpus: masked-LM, causal-LM, next-sentence, sentence-order or replaced-token",
    )
    pre.add_argument("--model", default="tiny-bert", help="tiny-bert, tiny-gpt, minilm, smollm2-135m or a folder")
    pre.add_argument("--task", choices=tuple(_PRETRAIN_KINDS), default="masked-lm")
    pre.add_argument(
        "--kind",
        choices=("masked-lm", "encoder", "causal-lm"),
        help="the model's head: next-sentence and sentence-order train with masked-LM (masked-lm, the default) "
        "or alone (encoder); replaced-token trains an encoder as ELECTRA's discriminator",
    )
    pre.add_argument("--data", default="shakespeare", help="a corpus name or a .txt file or folder")
    pre.add_argument("--eval-fraction", type=float, default=0.02)
    pre.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in output_dir")
    _add_config_flags(pre)
    pre.set_defaults(func=lambda a: _train(a, a.task))

    lens = sub.add_parser("tuned-lens", help="train a tuned lens (one translator per layer) for a language model")
    lens.add_argument("--model", default="smollm2-135m", help="smollm2-135m, or the folder of a trained LM")
    lens.add_argument("--data", default="rotten-tomatoes", help="a corpus name or a .txt file or folder")
    lens.add_argument("--eval-fraction", type=float, default=0.02)
    lens.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in output_dir")
    _add_config_flags(lens)
    lens.set_defaults(func=lambda a: _train(a, "tuned-lens"))

    dist = sub.add_parser(
        "distill", help="train a smaller student on a trained teacher's soft labels (a classifier or a masked LM)"
    )
    dist.add_argument("--teacher", required=True, help="the trained teacher: a model folder or checkpoint")
    dist.add_argument(
        "--student",
        default="every-other-layer",
        help="every-other-layer (a copy of the teacher keeping layers 0, 2, 4, ... as DistilBERT starts), "
        "tiny-bert (a fresh preset with the teacher's tokenizer), or a model folder",
    )
    dist.add_argument("--student-layers", type=int, default=3, help="layers of a preset student")
    dist.add_argument(
        "--data", default="movie-snippets", help="labelled data for a classifier, a corpus for a masked LM"
    )
    dist.add_argument("--eval-fraction", type=float, default=0.1)
    dist.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in output_dir")
    _add_config_flags(dist)
    dist.set_defaults(func=_distill)

    fine = sub.add_parser("finetune", help="fine-tune a classifier on labelled data")
    fine.add_argument("--model", default="minilm")
    fine.add_argument(
        "--data", default="movie-snippets", help="movie-snippets, sms-spam, rotten-tomatoes, or a csv/jsonl"
    )
    fine.add_argument("--eval-fraction", type=float, default=0.1)
    fine.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in output_dir")
    _add_config_flags(fine)
    fine.set_defaults(func=lambda a: _train(a, "classify"))

    comp = sub.add_parser("compress", help="quantize, prune or export a model, save it, and report what changed")
    comp.add_argument(
        "method",
        choices=("quantize", "prune", "onnx"),
        help="quantize: dynamic int8; prune: magnitude pruning; onnx: export, checked by onnxruntime",
    )
    comp.add_argument("model", help="a model name or folder (a fine-tuned classifier's checkpoint, say)")
    comp.add_argument("--out", required=True, help="folder for the compressed model (load_model reads it back)")
    comp.add_argument("--amount", type=float, default=0.5, help="prune: the fraction of each layer's weights to zero")
    comp.add_argument("--structured", action="store_true", help="prune whole output rows instead of single weights")
    comp.add_argument(
        "--data", help="evaluation data for the metric: labelled data for a classifier, a corpus otherwise"
    )
    comp.add_argument(
        "--eval-fraction",
        type=float,
        default=0.1,
        help="the held-out share of --data to evaluate on, as finetune and pretrain split it",
    )
    comp.add_argument("--eval-size", type=int, default=200, help="at most this many evaluation examples")
    comp.add_argument("--text", action="append", help="a text to compare attention and attributions on (repeatable)")
    comp.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 128], help="input lengths for latency")
    comp.add_argument("--json", action="store_true", help="print the report as JSON")
    comp.set_defaults(func=_compress)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; a WorkbenchError prints its sentence and exits with status 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except WorkbenchError as e:
        if os.environ.get("RANK", "0") == "0":  # one sentence, not one per process under `accelerate launch`
            print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
