"""The `workbench` command: the same jobs, headless."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from workbench.cli import main

if TYPE_CHECKING:
    from workbench.models import ModelBundle


def test_assets_list_prints_every_asset(capsys):
    assert main(["assets", "list", "--json"]) == 0
    names = [row["name"] for row in json.loads(capsys.readouterr().out)]
    assert "minilm" in names and "shakespeare" in names


def test_an_unknown_asset_is_one_sentence_and_exit_status_2(capsys):
    assert main(["assets", "fetch", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Unknown asset 'nope'") and "Traceback" not in err


def test_pretrain_takes_the_config_fields_as_flags(tmp_path, tiny_texts, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(tiny_texts * 3))
    out = tmp_path / "run"
    code = main(
        [
            "pretrain",
            "--model",
            "tiny-bert",
            "--data",
            str(corpus),
            "--max-steps",
            "3",
            "--batch-size",
            "4",
            "--block-size",
            "16",
            "--log-every",
            "1",
            "--progress",
            "false",
            "--output-dir",
            str(out),
            "--eval-fraction",
            "0.2",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["step"] == 3
    assert (out / "metrics.jsonl").exists() and (out / "checkpoints" / "step-0000003").is_dir()


def test_tuned_lens_trains_a_lens_for_a_trained_model_folder(tmp_path, tiny_texts, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(tiny_texts * 3))
    common = ["--data", str(corpus), "--max-steps", "2", "--batch-size", "4", "--block-size", "16"]
    common += ["--progress", "false", "--eval-fraction", "0.2"]
    assert (
        main(["pretrain", "--model", "tiny-gpt", "--task", "causal-lm", *common, "--output-dir", str(tmp_path / "lm")])
        == 0
    )
    model = tmp_path / "lm" / "checkpoints" / "step-0000002"
    out = tmp_path / "lens"
    code = main(["tuned-lens", "--model", str(model), *common, "--lens-positions", "4", "--output-dir", str(out)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["step"] == 2
    from workbench.models import load_model
    from workbench.training.tuned_lens import load_tuned_lens

    lens = load_tuned_lens(out, load_model(model))
    assert lens.trained_steps == 2 and float(lens.weight.abs().sum()) > 0  # it moved from the identity


def test_a_bad_config_value_is_one_sentence(tmp_path, tiny_texts, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(tiny_texts))
    assert main(["pretrain", "--data", str(corpus), "--learning-rate", "0"]) == 2
    assert "learning_rate must be above zero" in capsys.readouterr().err


def test_an_unknown_flag_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--lr-max", "3"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("method", ["quantize", "prune", "onnx"])
def test_compress_saves_the_model_and_prints_the_report(
    method: str, tmp_path: Path, tiny_texts: list[str], tiny_gpt: ModelBundle, capsys: pytest.CaptureFixture[str]
):
    from workbench.models import load_model

    folder = tiny_gpt.save(tmp_path / "gpt")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(tiny_texts * 3))
    out = tmp_path / method
    code = main(
        [
            "compress",
            method,
            str(folder),
            "--out",
            str(out),
            "--data",
            str(corpus),
            "--eval-fraction",
            "0.5",
            "--lengths",
            "8",
            "16",
            "--text",
            "The cat sat on the",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "weights (MB)" in printed and "perplexity" in printed and "attention drift" in printed
    assert "latency @16 tokens" in printed and f"saved: {out}" in printed
    again = load_model(out)
    assert again.extra["compression"]["method"] == {"quantize": "int8", "prune": "prune", "onnx": "onnx"}[method]


def test_compress_with_a_bad_amount_is_one_sentence(
    tmp_path: Path, tiny_gpt: ModelBundle, capsys: pytest.CaptureFixture[str]
):
    folder = tiny_gpt.save(tmp_path / "gpt")
    assert main(["compress", "prune", str(folder), "--out", str(tmp_path / "p"), "--amount", "1.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: amount must be a fraction in [0, 1)") and "Traceback" not in err


def test_distill_trains_every_other_layer_of_a_teacher_folder(tmp_path, make_tiny, tiny_texts, capsys):
    teacher = make_tiny("tiny-bert", kind="classifier", label_names=["negative", "positive"], layers=2)
    folder = teacher.save(tmp_path / "teacher")
    data = tmp_path / "reviews.csv"
    rows = [f'"{text}",{"positive" if i % 2 else "negative"}' for i, text in enumerate(tiny_texts * 2)]
    data.write_text("text,label\n" + "\n".join(rows) + "\n")
    out = tmp_path / "student"
    common = ["--max-steps", "2", "--batch-size", "4", "--max-length", "16", "--progress", "false"]
    code = main(["distill", "--teacher", str(folder), "--data", str(data), *common, "--output-dir", str(out)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["step"] == 2
    from workbench.models import load_model

    student = load_model(out / "checkpoints" / "step-0000002")
    assert student.kind == "classifier" and student.config.num_hidden_layers == 1
    assert student.extra["distillation"]["layers"] == [0]
    assert {"soft_loss", "hard_loss"} <= set(json.loads((out / "metrics.jsonl").read_text().splitlines()[0]))


NEW_OBJECTIVES = {  # task: (the kind it saves as, its head, a part of its loss it logs)
    "next-sentence": ("masked-lm", "next-sentence", "pair_loss"),
    "sentence-order": ("masked-lm", "sentence-order", "mlm_loss"),
    "replaced-token": ("encoder", "replaced-token", "discriminator_loss"),
}


@pytest.mark.parametrize("task", list(NEW_OBJECTIVES))
def test_pretrain_takes_the_new_objectives(tmp_path, tiny_texts, make_tiny, capsys, task):
    kind, head, logged = NEW_OBJECTIVES[task]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(tiny_texts * 3))
    model = make_tiny("tiny-bert").save(tmp_path / "tiny-bert")  # a small model: the preset's default is 4 x 256
    out = tmp_path / task
    flags = [
        "--model",
        str(model),
        "--data",
        str(corpus),
        "--max-steps",
        "2",
        "--batch-size",
        "4",
        "--block-size",
        "32",
    ]
    flags += ["--progress", "false", "--eval-fraction", "0.2", "--log-every", "1"]
    assert main(["pretrain", "--task", task, *flags, "--output-dir", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["step"] == 2
    from workbench.models import load_model

    saved = load_model(summary["checkpoint"])
    assert saved.kind == kind and list(saved.heads) == [head]
    assert logged in json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
