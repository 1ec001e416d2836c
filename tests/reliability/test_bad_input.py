"""A catalogue of bad and strange input against every public entry point.

Every call either works (strange but valid text: emoji, right-to-left, zero-width, markup) or
fails with the workbench's own error and one sentence — never a traceback from deep inside torch
or the tokenizers. The catalogue prints how many cases it tried.
"""

from __future__ import annotations

import pytest

from workbench.errors import WorkbenchError
from workbench.models import load_model

SMALL = {"layers": 2, "hidden": 32, "heads": 2, "vocab_size": 300, "max_positions": 64}

STRANGE_TEXT = {  # valid text: must work
    "emoji": "the cat 🐈‍⬛ sat 😀",
    "right-to-left": "the cat sat مرحبا بالعالم on the mat",
    "zero-width": "the\u200bcat\u200d sat\ufeff on",
    "markup": "<script>alert(1)</script> the <img src=x onerror=alert(2)> cat",
    "control characters": "the\x00cat\x07 sat\r\non",
}
BAD_TEXT = {  # must fail with a sentence
    "empty": "",
    "whitespace only": " \t\n ",
    "None": None,
    "a number": 42,
    "a list": ["the cat"],
    "10,000 tokens": "the cat sat on the mat " * 1700,
    "unpaired surrogate": "the cat \ud800 sat",
}

TRIED = {"cases": 0}


@pytest.fixture(scope="module")
def models():
    from tests.conftest import TINY_TEXTS

    return {
        "masked-lm": load_model("tiny-bert", corpus=TINY_TEXTS, **SMALL),
        "causal-lm": load_model("tiny-gpt", corpus=TINY_TEXTS, **SMALL),
        "classifier": load_model("tiny-bert", kind="classifier", label_names=["no", "yes"], corpus=TINY_TEXTS, **SMALL),
    }


def _masked(text):
    """A masked LM's probe needs a mask: add one to real text, leave bad input as it is."""
    return text + " [MASK]" if isinstance(text, str) and text.strip() else text


def _calls():
    from workbench.explain import attention, attribute, fill_mask, generate, logit_lens, next_token

    return {
        "fill_mask": ("masked-lm", lambda b, t: fill_mask(b, _masked(t))),
        "next_token": ("causal-lm", next_token),
        "logit_lens": ("causal-lm", logit_lens),
        "generate": ("causal-lm", lambda b, t: generate(b, t, max_new_tokens=2)),
        "attention": ("masked-lm", attention),
        "attribute occlusion": ("classifier", lambda b, t: attribute(b, t, method="occlusion")),
        "attribute integrated_gradients": (
            "classifier",
            lambda b, t: attribute(b, t, method="integrated_gradients", steps=4),
        ),
        "attribute shap (masked LM)": ("masked-lm", lambda b, t: attribute(b, _masked(t), method="shap", max_evals=20)),
        "attribute gradient_x_input (causal LM)": (
            "causal-lm",
            lambda b, t: attribute(b, t, method="gradient_x_input"),
        ),
        "compare_models": (
            "classifier",
            lambda b, t: __import__("workbench.compress", fromlist=["x"]).compare_models(
                b, b, texts=[t], lengths=(8,), repeats=1
            ),
        ),
    }


def _is_one_sentence(error: BaseException) -> bool:
    text = str(error).strip()
    return bool(text) and "\n" not in text and text.endswith((".", "?", ")")) and "Traceback" not in text


@pytest.mark.parametrize("call", list(_calls()))
@pytest.mark.parametrize("case", list(STRANGE_TEXT))
def test_strange_but_valid_text_works(models, call, case):
    kind, fn = _calls()[call]
    TRIED["cases"] += 1
    fn(models[kind], STRANGE_TEXT[case])


@pytest.mark.parametrize("call", list(_calls()))
@pytest.mark.parametrize("case", list(BAD_TEXT))
def test_bad_text_gets_the_workbenchs_error_and_one_sentence(models, call, case):
    kind, fn = _calls()[call]
    TRIED["cases"] += 1
    if call == "attention" and case == "10,000 tokens":
        result = fn(models[kind], BAD_TEXT[case])  # the explorer truncates, and says so
        assert result.truncated and "only the first" in result.note
        return
    with pytest.raises(WorkbenchError) as caught:
        fn(models[kind], BAD_TEXT[case])
    assert _is_one_sentence(caught.value), str(caught.value)


@pytest.mark.parametrize(
    "name, call",
    [
        ("unknown model", lambda m: load_model("no-such-model")),
        ("model name None", lambda m: load_model(None)),
        ("model path that escapes", lambda m: load_model("../../../etc")),
        ("unknown asset", lambda m: __import__("workbench.assets", fromlist=["fetch"]).fetch("no-such-asset")),
        ("asset name that escapes", lambda m: __import__("workbench.assets", fromlist=["fetch"]).fetch("../minilm")),
        (
            "unknown corpus",
            lambda m: __import__("workbench.data", fromlist=["load_corpus"]).load_corpus("no-such-corpus"),
        ),
        (
            "label out of range",
            lambda m: __import__("workbench.explain", fromlist=["attribute"]).attribute(
                m["classifier"], "the cat", 5, method="occlusion"
            ),
        ),
        (
            "probe without a mask",
            lambda m: __import__("workbench.explain", fromlist=["fill_mask"]).fill_mask(m["masked-lm"], "the cat sat"),
        ),
        (
            "top_k of zero",
            lambda m: __import__("workbench.explain", fromlist=["fill_mask"]).fill_mask(
                m["masked-lm"], "the [MASK]", top_k=0
            ),
        ),
        (
            "unknown task",
            lambda m: __import__("workbench.training", fromlist=["Trainer"]).Trainer(
                m["masked-lm"], "translate", ["the cat"]
            ),
        ),
        (
            "unknown config field",
            lambda m: __import__("workbench.training", fromlist=["TrainConfig"]).TrainConfig.from_dict(
                {"learning_rat": 1e-3}
            ),
        ),
        (
            "a checkpoint folder that is not one",
            lambda m: __import__("workbench.training.checkpoint", fromlist=["x"]).read_checkpoint(
                __import__("pathlib").Path("/tmp"), model=m["masked-lm"].model
            ),
        ),
        (
            "training data None",
            lambda m: __import__("workbench.training", fromlist=["Trainer"]).Trainer(m["masked-lm"], "masked-lm", None),
        ),
        (
            "training data empty",
            lambda m: __import__("workbench.training", fromlist=["Trainer"]).Trainer(m["masked-lm"], "masked-lm", []),
        ),
        (
            "classifier trained on plain text",
            lambda m: __import__("workbench.training", fromlist=["Trainer"]).Trainer(
                m["classifier"], "classify", ["the cat"]
            ),
        ),
        (
            "batch size zero",
            lambda m: __import__("workbench.training", fromlist=["TrainConfig"]).TrainConfig(batch_size=0),
        ),
        (
            "negative learning rate",
            lambda m: __import__("workbench.training", fromlist=["TrainConfig"]).TrainConfig(learning_rate=-1.0),
        ),
        ("corpus None", lambda m: __import__("workbench.data", fromlist=["load_corpus"]).load_corpus(None)),
        (
            "unknown labelled data",
            lambda m: __import__("workbench.data", fromlist=["load_labelled"]).load_labelled("nope"),
        ),
        (
            "tokenizer from no text",
            lambda m: __import__("workbench.data", fromlist=["train_tokenizer"]).train_tokenizer([]),
        ),
        (
            "compare with no model",
            lambda m: __import__("workbench.explain", fromlist=["compare"]).compare([], "fill_mask", "the [MASK]"),
        ),
        (
            "a recorder with one sentence, not a list",
            lambda m: __import__("workbench.explain", fromlist=["x"]).ProbeRecorder("the [MASK]"),
        ),
        (
            "prune more than everything",
            lambda m: __import__("workbench.compress", fromlist=["x"]).prune(m["classifier"], 2),
        ),
        ("prune by a word", lambda m: __import__("workbench.compress", fromlist=["x"]).prune(m["classifier"], "half")),
        ("quantize a name, not a model", lambda m: __import__("workbench.compress", fromlist=["x"]).quantize("minilm")),
        (
            "quantize twice",
            lambda m: (lambda c: c.quantize(c.quantize(m["classifier"])))(
                __import__("workbench.compress", fromlist=["x"])
            ),
        ),
        (
            "compare two different models",
            lambda m: __import__("workbench.compress", fromlist=["x"]).compare_models(m["classifier"], m["causal-lm"]),
        ),
        (
            "several processes with nowhere to save",
            lambda m: __import__("workbench.training", fromlist=["x"]).DistributedTrainer(
                m["causal-lm"], "causal-lm", ["the cat sat on the mat"] * 8
            ),
        ),
        (
            "zero processes",
            lambda m: __import__("workbench.training", fromlist=["x"]).DistributedTrainer(
                m["causal-lm"],
                "causal-lm",
                ["the cat"] * 8,
                config=__import__("workbench.training", fromlist=["x"]).TrainConfig(output_dir="/tmp/x"),
                num_processes=0,
            ),
        ),
    ],
)
def test_bad_names_and_values_get_the_workbenchs_error_and_one_sentence(models, name, call):
    TRIED["cases"] += 1
    with pytest.raises(WorkbenchError) as caught:
        call(models)
    assert _is_one_sentence(caught.value), str(caught.value)


@pytest.mark.parametrize(
    "view, call",
    [
        ("AttentionView", lambda: __import__("workbench.ui", fromlist=["x"]).AttentionView("not a result")),
        ("AttributionView", lambda: __import__("workbench.ui", fromlist=["x"]).AttributionView(None)),
        ("ProbeTimeline", lambda: __import__("workbench.ui", fromlist=["x"]).ProbeTimeline(3.5)),
        ("MaskProbe", lambda: __import__("workbench.ui", fromlist=["x"]).MaskProbe(None)),
        ("CompressionView", lambda: __import__("workbench.ui", fromlist=["x"]).CompressionView({"size": 1})),
    ],
)
def test_views_given_the_wrong_thing_say_what_they_take(view, call):
    TRIED["cases"] += 1
    with pytest.raises(TypeError) as caught:
        call()
    assert "takes" in str(caught.value) and _is_one_sentence(caught.value)


@pytest.mark.parametrize("case", list(BAD_TEXT) + list(STRANGE_TEXT))
def test_the_mask_probe_shows_a_sentence_for_any_text_typed(models, case):
    from workbench.ui import MaskProbe

    TRIED["cases"] += 1
    view = MaskProbe(models["masked-lm"], "the [MASK]")
    text = {**BAD_TEXT, **STRANGE_TEXT}[case]
    if not isinstance(text, str):
        return  # the text box only ever sends strings
    view.text = text
    assert (view.error and _is_one_sentence(view.error)) or view.result


def test_zz_report_how_many_cases_were_tried():
    print(f"\nbad-input catalogue: {TRIED['cases']} cases tried")
    assert TRIED["cases"] >= 130
