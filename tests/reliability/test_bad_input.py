"""A catalogue of bad and strange input against every public entry point.

Every call either works (strange but valid text: emoji, right-to-left, zero-width, markup) and
returns what it would for plain text, or fails with the workbench's own error and one sentence —
never a traceback from deep inside torch or the tokenizers. The session's summary says how many
cases the catalogue tried (tests/reliability/conftest.py counts them).
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import torch
import traitlets

from workbench import assets, compress, ui
from workbench.data import load_corpus, load_labelled, train_tokenizer
from workbench.errors import MemoryBudgetError, WorkbenchError
from workbench.explain import (
    ProbeRecorder,
    TunedLens,
    ablate,
    ablate_each_head,
    attention,
    attribute,
    attribute_many,
    attribution_patching,
    compare,
    evaluate_classifier,
    fill_mask,
    generate,
    lens_quality,
    load_steering_vector,
    load_tuned_lens,
    logit_lens,
    next_token,
    patch,
    probe_layers,
    project_layers,
    random_ranking_floor,
    replaced_tokens,
    sentence_pair,
    set_memory_budget,
    steering_vector,
)
from workbench.figures import compare_runs, plot, project
from workbench.models import load_model
from workbench.models.objective_heads import make_head
from workbench.training import DistributedTrainer, TrainConfig, Trainer
from workbench.training.checkpoint import read_checkpoint
from workbench.training.history import TrainingHistory

if TYPE_CHECKING:
    from workbench.models import ModelBundle

pytestmark = pytest.mark.catalogue("bad-input catalogue")

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
BAD_STRINGS = {case: text for case, text in BAD_TEXT.items() if isinstance(text, str)}


CLEAN, CORRUPTED = "the cat sat on the mat", "the dog sat on the mat"  # as many tokens each
OTHER_CORPUS = ["Completely different words build another vocabulary here.", "Zebras quietly juggle oranges."] * 20
LONG_TEXT = "the cat sat on the mat and looked at the dog. " * 50  # 600 to 950 tokens: over 1 MB to explain


@pytest.fixture(scope="module")
def models(
    tiny_bert: ModelBundle, tiny_gpt: ModelBundle, tiny_classifier: ModelBundle, make_tiny: Callable[..., ModelBundle]
) -> dict[str, ModelBundle]:
    """The tiny models, and ("long ...") the same kinds taking 1,024 positions, for calls over their memory budget."""
    return {
        "masked-lm": tiny_bert,
        "causal-lm": tiny_gpt,
        "classifier": tiny_classifier,
        "long masked-lm": make_tiny("tiny-bert", max_positions=1024),
        "long causal-lm": make_tiny("tiny-gpt", max_positions=1024),
        "long classifier": make_tiny("tiny-bert", kind="classifier", label_names=["no", "yes"], max_positions=1024),
        "three-layer causal-lm": make_tiny("tiny-gpt", layers=3),
        "masked-lm with heads": dataclasses.replace(
            tiny_bert,
            heads={n: make_head(n, tiny_bert.config.hidden_size) for n in ("next-sentence", "replaced-token")},
        ),
        "other-tokenizer classifier": make_tiny(
            "tiny-bert", kind="classifier", label_names=["negative", "positive"], corpus=OTHER_CORPUS
        ),
    }


def _masked(text: Any) -> Any:
    """A masked LM's probe needs a mask: add one to real text, leave bad input as it is."""
    return text + " [MASK]" if isinstance(text, str) and text.strip() else text


def _is_distribution(probabilities: Any, k: int) -> bool:
    """The top ``k`` probabilities of one distribution: each in (0, 1], largest first, together at most 1."""
    p = np.asarray(probabilities, dtype=np.float64)
    return p.shape == (k,) and bool(
        (p > 0).all() and (p <= 1).all() and (np.diff(p) <= 0).all() and p.sum() <= 1 + 1e-5
    )


def _failed(**conditions: bool) -> list[str]:
    """The names of the conditions that do not hold: what a result got wrong, for the test's assertion."""
    return [name for name, holds in conditions.items() if not holds]


def _check_fill_mask(result: Any, text: str) -> list[str]:
    return _failed(
        echoes_the_text=result.text == _masked(text),
        one_mask=len(result.predictions) == 1,
        top5_distribution=_is_distribution(result.predictions[0].probabilities, 5),
    )


def _check_next_token(result: Any, text: str) -> list[str]:
    return _failed(
        top5_distribution=_is_distribution(result.probabilities, 5),
        five_tokens_and_ids=len(result.tokens) == len(result.token_ids) == 5,
    )


def _check_logit_lens(result: Any, text: str) -> list[str]:
    top = result.top_probs
    return _failed(
        pieces_join_to_the_text="".join(result.tokens.text) == text,  # byte-level pieces decoded, no mojibake
        shape=top.shape == (3, len(result.tokens.text), 5),  # (embeddings + 2 layers, positions, k)
        probabilities=bool((top >= 0).all() and (top.sum(-1) <= 1 + 1e-5).all()),
    )


def _check_generate(result: Any, text: str) -> list[str]:
    return _failed(
        echoes_the_prompt=result.prompt == text,
        two_steps_or_end=len(result.steps) == 2 or result.stopped_by == "end of text",
        probabilities=all(0 < step.probability <= 1 for step in result.steps),
    )


def _check_attention(result: Any, text: str) -> list[str]:
    n = len(result.tokens.text)
    return _failed(
        echoes_the_text=result.text == text,
        shape=result.weights.shape == (2, 2, n, n),  # (layers, heads, query, key)
        rows_sum_to_one=bool(np.allclose(result.weights.sum(-1), 1, atol=1e-4)),
    )


def _check_attribution(covers: str) -> Callable[[Any, str], list[str]]:
    """Scores for every token, zero where it is not a feature; the pieces (``covers``) joined give back the text."""

    def check(result: Any, text: str) -> list[str]:
        text = _masked(text) if result.task == "masked-lm" else text
        pieces = result.segments if covers == "segments" else result.tokens.text
        scores = np.asarray(result.scores)
        return _failed(
            echoes_the_text=result.text == text,
            pieces_join_to_the_text="".join(pieces) == text,
            a_finite_score_per_token=scores.shape == (len(result.tokens.text),) and bool(np.isfinite(scores).all()),
            zero_off_features=not scores[~np.asarray(result.features)].any(),
        )

    return check


def _check_compare_models(report: Any, text: str) -> list[str]:
    # A model compared with itself: no attention moves, the attributions rank tokens the same.
    return _failed(
        echoes_the_text=report.texts == [text],
        no_drift=report.attention_drift == 0,
        same_ranking=report.mean_spearman == 1,
    )


# Each public call: the model it takes, how it is called on a text, and what its result must satisfy.
def _check_sentence_pair(result: Any, text: str) -> list[str]:
    return _failed(
        probability=0.0 <= result.probability <= 1.0,
        two_segments=set(result.segments) == {0, 1} and len(result.segments) == len(result.tokens),
        both_texts=result.first == text and result.second == "and then",
    )


def _check_replaced_tokens(result: Any, text: str) -> list[str]:
    p = np.asarray(result.probabilities)
    return _failed(
        one_per_token=p.shape == (len(result.tokens.text),),
        probabilities=bool(np.all((p >= 0) & (p <= 1))),
        text=result.text == text,
    )


CALLS: dict[str, tuple[str, Callable[[Any, Any], Any], Callable[[Any, str], list[str]]]] = {
    "sentence_pair": ("masked-lm with heads", lambda b, t: sentence_pair(b, t, "and then"), _check_sentence_pair),
    "replaced_tokens": ("masked-lm with heads", replaced_tokens, _check_replaced_tokens),
    "fill_mask": ("masked-lm", lambda b, t: fill_mask(b, _masked(t)), _check_fill_mask),
    "next_token": ("causal-lm", next_token, _check_next_token),
    "logit_lens": ("causal-lm", logit_lens, _check_logit_lens),
    "logit_lens through a tuned lens": (
        "causal-lm",
        lambda b, t: logit_lens(b, t, lens=TunedLens.for_model(b)),
        _check_logit_lens,
    ),
    "generate": ("causal-lm", lambda b, t: generate(b, t, max_new_tokens=2), _check_generate),
    "attention": ("masked-lm", attention, _check_attention),
    "attribute occlusion": (
        "classifier",
        lambda b, t: attribute(b, t, method="occlusion"),
        _check_attribution("segments"),
    ),
    "attribute integrated_gradients": (
        "classifier",
        lambda b, t: attribute(b, t, method="integrated_gradients", steps=4),
        _check_attribution("segments"),
    ),
    "attribute shap (masked LM)": (
        "masked-lm",
        lambda b, t: attribute(b, _masked(t), method="shap", max_evals=20),
        _check_attribution("segments"),
    ),
    "attribute gradient_x_input (causal LM)": (
        "causal-lm",
        lambda b, t: attribute(b, t, method="gradient_x_input"),
        _check_attribution("tokens"),
    ),
    "compare_models": (
        "classifier",
        lambda b, t: compress.compare_models(b, b, texts=[t], lengths=(8,), repeats=1),
        _check_compare_models,
    ),
}


def _is_one_sentence(error: BaseException | str) -> bool:
    text = str(error).strip()
    return bool(text) and "\n" not in text and text.endswith((".", "?", ")")) and "Traceback" not in text


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("case", list(STRANGE_TEXT))
def test_strange_but_valid_text_works(models: dict[str, ModelBundle], call: str, case: str):
    kind, fn, check = CALLS[call]
    assert check(fn(models[kind], STRANGE_TEXT[case]), STRANGE_TEXT[case]) == []


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("case", list(BAD_TEXT))
def test_bad_text_gets_the_workbenchs_error_and_one_sentence(models: dict[str, ModelBundle], call: str, case: str):
    kind, fn, _ = CALLS[call]
    if call == "attention" and case == "10,000 tokens":
        result = fn(models[kind], BAD_TEXT[case])  # the explorer truncates, and says so
        assert result.truncated and "only the first" in result.note
        return
    with pytest.raises(WorkbenchError) as caught:
        fn(models[kind], BAD_TEXT[case])
    assert _is_one_sentence(caught.value), str(caught.value)


NAMES_AND_VALUES = [  # (case, a call on the models that must fail)
    ("unknown model", lambda m: load_model("no-such-model")),
    ("model name None", lambda m: load_model(None)),
    ("model path that escapes", lambda m: load_model("../../../etc")),
    ("unknown asset", lambda m: assets.fetch("no-such-asset")),
    ("asset name that escapes", lambda m: assets.fetch("../minilm")),
    ("unknown corpus", lambda m: load_corpus("no-such-corpus")),
    ("label out of range", lambda m: attribute(m["classifier"], "the cat", 5, method="occlusion")),
    ("probe without a mask", lambda m: fill_mask(m["masked-lm"], "the cat sat")),
    ("top_k of zero", lambda m: fill_mask(m["masked-lm"], "the [MASK]", top_k=0)),
    ("unknown task", lambda m: Trainer(m["masked-lm"], "translate", ["the cat"])),
    ("unknown config field", lambda m: TrainConfig.from_dict({"learning_rat": 1e-3})),
    ("a checkpoint folder that is not one", lambda m: read_checkpoint(Path("/tmp"), model=m["masked-lm"].model)),
    ("training data None", lambda m: Trainer(m["masked-lm"], "masked-lm", None)),
    ("training data empty", lambda m: Trainer(m["masked-lm"], "masked-lm", [])),
    ("classifier trained on plain text", lambda m: Trainer(m["classifier"], "classify", ["the cat"])),
    ("batch size zero", lambda m: TrainConfig(batch_size=0)),
    ("negative learning rate", lambda m: TrainConfig(learning_rate=-1.0)),
    ("corpus None", lambda m: load_corpus(None)),
    ("unknown labelled data", lambda m: load_labelled("nope")),
    ("tokenizer from no text", lambda m: train_tokenizer([])),
    ("compare with no model", lambda m: compare([], "fill_mask", "the [MASK]")),
    ("a recorder with one sentence, not a list", lambda m: ProbeRecorder("the [MASK]")),
    ("prune more than everything", lambda m: compress.prune(m["classifier"], 2)),
    ("prune by a word", lambda m: compress.prune(m["classifier"], "half")),
    ("quantize a name, not a model", lambda m: compress.quantize("minilm")),
    ("quantize twice", lambda m: compress.quantize(compress.quantize(m["classifier"]))),
    ("compare two different models", lambda m: compress.compare_models(m["classifier"], m["causal-lm"])),
    (
        "several processes with nowhere to save",
        lambda m: DistributedTrainer(m["causal-lm"], "causal-lm", ["the cat sat on the mat"] * 8),
    ),
    (
        "zero processes",
        lambda m: DistributedTrainer(
            m["causal-lm"], "causal-lm", ["the cat"] * 8, config=TrainConfig(output_dir="/tmp/x"), num_processes=0
        ),
    ),
    # over the memory budget: a sentence naming what the call needs, before it runs the model
    ("attention over its budget", lambda m: attention(m["long masked-lm"], LONG_TEXT, memory_mb=1)),
    ("logit lens over its budget", lambda m: logit_lens(m["long causal-lm"], LONG_TEXT, memory_mb=1)),
    (
        "attribution over its budget",
        lambda m: attribute(m["long classifier"], LONG_TEXT, method="occlusion", memory_mb=1),
    ),
    (
        "gradients over the kernel's budget",
        lambda m: _with_kernel_budget(1, lambda: attribute(m["long causal-lm"], LONG_TEXT, method="gradient_x_input")),
    ),
    ("generation over its budget", lambda m: generate(m["long causal-lm"], LONG_TEXT, memory_mb=1)),
    (
        "compare over its budget",
        lambda m: compare([m["long masked-lm"]], "fill_mask", LONG_TEXT + " [MASK]", memory_mb=1),
    ),
    (
        "compare_models over its budget",
        lambda m: compress.compare_models(m["long classifier"], m["long classifier"], texts=[LONG_TEXT], memory_mb=1),
    ),
    # a budget that is not a positive whole number of megabytes
    ("memory_mb of zero", lambda m: attention(m["masked-lm"], "the cat", memory_mb=0)),
    ("negative memory_mb", lambda m: attribute(m["classifier"], "the cat", method="occlusion", memory_mb=-5)),
    ("memory_mb as a word", lambda m: generate(m["causal-lm"], "the cat", memory_mb="big")),
    ("memory_mb True", lambda m: logit_lens(m["causal-lm"], "the cat", memory_mb=True)),
    ("memory_mb as a fraction", lambda m: compare([m["causal-lm"]], "next_token", "the cat", memory_mb=0.5)),
    ("memory_mb for many texts", lambda m: attribute_many(m["classifier"], ["the cat"], memory_mb=0, progress=False)),
    ("memory_mb of compare_models", lambda m: compress.compare_models(m["classifier"], m["classifier"], memory_mb=-1)),
    ("a kernel budget of zero", lambda m: _with_kernel_budget(0, lambda: None)),
    ("a kernel budget as a word", lambda m: _with_kernel_budget("1 GB", lambda: None)),
    # interventions: sites, patching, causal tracing, attribution patching, ablation, steering
    ("patch texts of different lengths", lambda m: patch(m["causal-lm"], CLEAN, "the dog", (5, 6))),
    ("patch an unknown site", lambda m: patch(m["causal-lm"], CLEAN, CORRUPTED, (5, 6), sites="mlp")),
    ("patch a layer out of range", lambda m: patch(m["causal-lm"], CLEAN, CORRUPTED, (5, 6), sites="resid_post.9")),
    (
        "patch sites of two kinds",
        lambda m: patch(m["causal-lm"], CLEAN, CORRUPTED, (5, 6), sites=["resid_post.0", "mlp_out.1"]),
    ),
    ("patch a position out of range", lambda m: patch(m["causal-lm"], CLEAN, CORRUPTED, (5, 6), positions=[40])),
    ("a patching metric that is not a number", lambda m: patch(m["causal-lm"], CLEAN, CORRUPTED, lambda x: "high")),
    ("a logit difference of one token with itself", lambda m: patch(m["causal-lm"], CLEAN, CORRUPTED, (5, 5))),
    ("a metric that is neither a token nor a function", lambda m: patch(m["causal-lm"], CLEAN, CORRUPTED, 2.5)),
    ("patch in an unknown direction", lambda m: patch(m["causal-lm"], CLEAN, CORRUPTED, (5, 6), direction="up")),
    ("causal tracing without a subject", lambda m: patch(m["causal-lm"], CLEAN, None, (5, 6))),
    (
        "causal tracing of a subject not in the text",
        lambda m: patch(m["causal-lm"], CLEAN, None, (5, 6), subject="zebra"),
    ),
    (
        "causal tracing with no noise draws",
        lambda m: patch(m["causal-lm"], CLEAN, None, (5, 6), subject="cat", samples=0),
    ),
    ("patch a clean text against itself", lambda m: patch(m["causal-lm"], CLEAN, CLEAN, (5, 6))),
    (
        "patching over its budget",
        lambda m: patch(m["long causal-lm"], LONG_TEXT, LONG_TEXT.replace("cat", "dog"), (5, 6), memory_mb=1),
    ),
    (
        "attribution patching against a map of other sites",
        lambda m: attribution_patching(
            m["causal-lm"],
            CLEAN,
            CORRUPTED,
            (5, 6),
            against=patch(m["causal-lm"], CLEAN, CORRUPTED, (5, 6), sites="resid_pre"),
        ),
    ),
    (
        "attribution patching against patching in the other direction",
        lambda m: attribution_patching(
            m["causal-lm"],
            CLEAN,
            CORRUPTED,
            (5, 6),
            against=patch(m["causal-lm"], CLEAN, CORRUPTED, (5, 6), direction="noise"),
        ),
    ),
    ("attribution patching of a classifier", lambda m: attribution_patching(m["classifier"], CLEAN, CORRUPTED, (0, 1))),
    ("ablate a layer out of range", lambda m: ablate(m["causal-lm"], "the cat", [(9, 0)])),
    ("ablate a head out of range", lambda m: ablate(m["causal-lm"], "the cat", ["0.9"])),
    ("ablate a head written as a word", lambda m: ablate(m["causal-lm"], "the cat", ["first head"])),
    ("ablate heads given as a number", lambda m: ablate(m["causal-lm"], "the cat", 3)),
    ("ablate by an unknown kind", lambda m: ablate(m["causal-lm"], "the cat", [(0, 0)], kind="half")),
    ("zero ablation given reference texts", lambda m: ablate(m["causal-lm"], "the cat", [(0, 0)], reference="a dog")),
    (
        "mean ablation with no reference text",
        lambda m: ablate(m["causal-lm"], "the cat", [(0, 0)], kind="mean", reference=[]),
    ),
    ("ablate a masked LM's text without a mask", lambda m: ablate(m["masked-lm"], "the cat sat", [(0, 0)])),
    ("ablate a classifier", lambda m: ablate_each_head(m["classifier"], "the cat")),
    (
        "an ablation metric that is not a number",
        lambda m: ablate_each_head(m["causal-lm"], "the cat", target=lambda x: "high"),
    ),
    ("an ablation target of two tokens", lambda m: ablate(m["causal-lm"], "the cat", [(0, 0)], target=" the cat sat")),
    ("ablation over its budget", lambda m: ablate_each_head(m["long causal-lm"], LONG_TEXT, memory_mb=1)),
    ("steering vector at a layer out of range", lambda m: steering_vector(m["causal-lm"], "the cat", "the dog", 7)),
    (
        "steering vector at a layer named by a word",
        lambda m: steering_vector(m["causal-lm"], "the cat", "the dog", "last"),
    ),
    ("steering vector from no prompts", lambda m: steering_vector(m["causal-lm"], [], "the dog", 0)),
    (
        "steering vector over its budget",
        lambda m: steering_vector(m["long causal-lm"], LONG_TEXT, "the dog", 0, memory_mb=1),
    ),
    (
        "steering with a vector from another model",
        lambda m: generate(m["causal-lm"], "the cat", 2, steer=(_vector(m, "masked-lm"), 1.0)),
    ),
    (
        "steering with a coefficient of NaN",
        lambda m: generate(m["causal-lm"], "the cat", 2, steer=(_vector(m), math.nan)),
    ),
    ("steering with a bare vector, no coefficient", lambda m: generate(m["causal-lm"], "the cat", 2, steer=_vector(m))),
    ("steering with a list, not a vector", lambda m: generate(m["causal-lm"], "the cat", 2, steer=([0.0] * 32, 1.0))),
    ("a steering vector file that is not one", lambda m: load_steering_vector(Path(__file__))),
    ("a steering vector file that is missing", lambda m: load_steering_vector(Path("/nonexistent/vector.safetensors"))),
    (
        "a tuned lens trained for another model",
        lambda m: logit_lens(m["causal-lm"], "the cat", lens=_lens(m, "masked-lm")),
    ),
    (
        "a tuned lens with a different number of layers",
        lambda m: load_tuned_lens(_lens(m).save(_scratch() / "lens"), m["three-layer causal-lm"]),
    ),
    ("a tuned lens given as a string", lambda m: logit_lens(m["causal-lm"], "the cat", lens="runs/lens")),
    ("a tuned lens folder that holds none", lambda m: load_tuned_lens(_scratch())),
    ("a tuned lens file that is not one", lambda m: load_tuned_lens(Path(__file__))),
    ("a tuned lens row out of range", lambda m: _lens(m).translate(3, torch.zeros(32))),
    ("lens quality on one string, not a list", lambda m: lens_quality(m["causal-lm"], "the cat sat")),
    ("lens quality on an empty list", lambda m: lens_quality(m["causal-lm"], [])),
    ("lens quality of a classifier", lambda m: lens_quality(m["classifier"], ["the cat sat"])),
    (
        "lens quality with a lens of another model",
        lambda m: lens_quality(m["causal-lm"], ["the cat"], _lens(m, "masked-lm")),
    ),
    (
        "lens quality over its memory budget",
        lambda m: lens_quality(m["long causal-lm"], [LONG_TEXT], max_length=1024, memory_mb=1),
    ),
    ("a tuned-lens run on a classifier", lambda m: Trainer(m["classifier"], "tuned-lens", ["the cat sat"])),
    ("probing labelled data with one class", lambda m: probe_layers(m["masked-lm"], [(t, "x") for t, _ in PROBE_DATA])),
    (
        "probing with too few examples of a class",
        lambda m: probe_layers(m["masked-lm"], PROBE_DATA[:4] + PROBE_DATA[-4:]),
    ),
    ("probing with an unknown pooling", lambda m: probe_layers(m["masked-lm"], PROBE_DATA, pooling="max")),
    ("probing with an unknown control task", lambda m: probe_layers(m["masked-lm"], PROBE_DATA, control="random")),
    ("probing with a test share of 1", lambda m: probe_layers(m["masked-lm"], PROBE_DATA, test_share=1)),
    ("probing a number, not a model", lambda m: probe_layers(42, PROBE_DATA)),
    ("probing a folder with no model", lambda m: probe_layers(_scratch(), PROBE_DATA)),
    (
        "probing over its memory budget",
        lambda m: probe_layers(m["masked-lm"], PROBE_DATA * 200, max_examples=None, memory_mb=1, progress=False),
    ),
    ("a probe result's checkpoint out of range", lambda m: _probed(m).best_layer(1)),
    (
        "a mask probe with a tuned lens folder that holds none",
        lambda m: ui.MaskProbe(m["causal-lm"], tuned_lens=_scratch()),
    ),
    (
        "a patching map opened with another model's bundle",
        lambda m: ui.PatchingView(ablate_each_head(m["causal-lm"], "the cat sat on the"), bundle=m["masked-lm"]),
    ),
]
FIGURES = [  # (case, a figure call that must fail): plot() and its options, and the calls figures draw
    ("plot() given a number", lambda m: plot(3)),
    ("plot() given an empty list", lambda m: plot([])),
    ("plot() given a list of numbers", lambda m: plot([1, 2])),
    ("plot() with an option its figure does not take", lambda m: plot(_attention(m), colour="red")),
    ("an attention figure of an unknown statistic", lambda m: plot(_attention(m), statistic="loudness")),
    ("an attention figure of a head out of range", lambda m: plot(_attention(m), head=(9, 0))),
    ("an attention figure with a head that is not a pair", lambda m: plot(_attention(m), head=3)),
    ("a lens figure coloured by an unknown thing", lambda m: plot(_lens_result(m), color="entropy")),
    ("a lens figure with more top tokens than it holds", lambda m: plot(_lens_result(m), k=99)),
    (
        "lenses side by side on two texts",
        lambda m: plot([_lens_result(m), logit_lens(m["causal-lm"], "a dog ran to the")]),
    ),
    ("a run folder with no metrics", lambda m: plot(_scratch())),
    ("a run folder that does not exist", lambda m: plot(_scratch() / "gone")),
    ("compare_runs of an empty list", lambda m: compare_runs([])),
    ("compare_runs of one history, not a list", lambda m: compare_runs(TrainingHistory())),
    ("compare_runs of a number", lambda m: compare_runs([3])),
    ("a history figure on an unknown axis", lambda m: plot(_history(), x="epoch")),
    ("a history figure smoothed by 1", lambda m: plot(_history(), smooth=1.0)),
    ("a classifier evaluation of a masked LM", lambda m: evaluate_classifier(m["masked-lm"], ["the cat"], [0])),
    ("a classifier evaluation with a label out of range", lambda m: evaluate_classifier(m["classifier"], ["a"], [5])),
    ("a classifier evaluation with no labels", lambda m: evaluate_classifier(m["classifier"], ["the cat"])),
    (
        "a classifier evaluation with more texts than labels",
        lambda m: evaluate_classifier(m["classifier"], ["a", "b", "c"], [0]),
    ),
    ("a classifier figure of an unknown view", lambda m: plot(_evaluation(m), view="roc")),
    ("a projection of two texts", lambda m: project_layers(m["masked-lm"], ["the cat", "a dog"])),
    ("a projection in four dimensions", lambda m: project_layers(m["masked-lm"], PROJECTED, dims=4)),
    ("a projection by an unknown method", lambda m: project_layers(m["masked-lm"], PROJECTED, method="umap")),
    ("a projection of a layer out of range", lambda m: project(m["masked-lm"], PROJECTED, layer=9)),
    ("a projection of three models", lambda m: project([m["masked-lm"]] * 3, PROJECTED)),
    ("a projection coloured by labels it was not given", lambda m: project(m["masked-lm"], PROJECTED, color="label")),
    ("a random floor of no rankings", lambda m: random_ranking_floor(m["classifier"], _attribution(m), rankings=0)),
    ("a deletion figure with a floor of a list", lambda m: plot([_attribution(m)], floor=[0.5])),
]
PAIR_TEXTS = ["To be, or not to be. That is the question.", "Whether 'tis nobler in the mind to suffer."]
OBJECTIVES = [  # (case, a call that must fail): the pretraining objectives, their probes, and distillation
    ("a next-sentence run on a causal LM", lambda m: Trainer(m["causal-lm"], "next-sentence", PAIR_TEXTS)),
    ("a sentence-order run on a causal LM", lambda m: Trainer(m["causal-lm"], "sentence-order", PAIR_TEXTS)),
    ("next-sentence pairs from one segment", lambda m: Trainer(m["masked-lm"], "next-sentence", ["One text."])),
    ("sentence-order pairs from one segment", lambda m: Trainer(m["masked-lm"], "sentence-order", ["Just one."])),
    ("a pair probe of a model with no pair head", lambda m: sentence_pair(m["masked-lm"], *PAIR_TEXTS)),
    ("a pair probe of an empty first text", lambda m: sentence_pair(_with_head(m, "next-sentence"), "", "x")),
    ("a pair probe of a second text of spaces", lambda m: sentence_pair(_with_head(m, "next-sentence"), "x", "  ")),
    (
        "a pair probe of a model with both pair heads and no task",
        lambda m: sentence_pair(_with_head(m, "next-sentence", "sentence-order"), *PAIR_TEXTS),
    ),
    ("a replaced-token run on a causal LM", lambda m: Trainer(m["causal-lm"], "replaced-token", PAIR_TEXTS)),
    (
        "a generator deeper than its discriminator",
        lambda m: Trainer(m["masked-lm"], "replaced-token", PAIR_TEXTS, config=TrainConfig(generator_layers=9)),
    ),
    ("a discriminator weight of zero", lambda m: TrainConfig(discriminator_weight=0)),
    ("a replaced-token probe of a model with no head", lambda m: replaced_tokens(m["masked-lm"], PAIR_TEXTS[0])),
    ("a replaced-token probe of empty text", lambda m: replaced_tokens(_with_head(m, "replaced-token"), "")),
    ("a temperature of zero", lambda m: TrainConfig(temperature=0)),
    ("a negative temperature", lambda m: TrainConfig(temperature=-2.0)),
    ("a negative hard-label weight", lambda m: TrainConfig(hard_label_weight=-1)),
    ("a distill run without a teacher", lambda m: Trainer(m["classifier"], "distill", PROBE_DATA)),
    (
        "a teacher given to another task",
        lambda m: Trainer(m["masked-lm"], "masked-lm", PAIR_TEXTS, teacher=m["masked-lm"]),
    ),
    (
        "a student with another label set",
        lambda m: Trainer(m["long classifier"], "distill", PROBE_DATA, teacher=m["classifier"]),
    ),
    (
        "a student with another tokenizer",
        lambda m: Trainer(m["other-tokenizer classifier"], "distill", PROBE_DATA, teacher=m["classifier"]),
    ),
    (
        "a student of another kind than its teacher",
        lambda m: Trainer(m["classifier"], "distill", PROBE_DATA, teacher=m["masked-lm"]),
    ),
    (
        "a causal LM as a student",
        lambda m: Trainer(m["causal-lm"], "distill", PAIR_TEXTS, teacher=m["three-layer causal-lm"]),
    ),
    (
        "a student that is its own teacher",
        lambda m: Trainer(m["classifier"], "distill", PROBE_DATA, teacher=m["classifier"]),
    ),
    ("every other layer of a causal LM", lambda m: compress.every_other_layer(m["causal-lm"])),
    ("a student from the tiny-gpt preset", lambda m: compress.preset_student(m["classifier"], "tiny-gpt")),
    ("a student keeping layers out of order", lambda m: compress.keep_layers(m["classifier"], [1, 0])),
]
VIEWS = [  # (view, a call that gives it the wrong thing)
    ("AttentionView", lambda: ui.AttentionView("not a result")),
    ("AttributionView", lambda: ui.AttributionView(None)),
    ("ProbeTimeline", lambda: ui.ProbeTimeline(3.5)),
    ("MaskProbe", lambda: ui.MaskProbe(None)),
    ("CompressionView", lambda: ui.CompressionView({"size": 1})),
    ("PatchingView", lambda: ui.PatchingView({"values": [[0.0]]})),
    ("LayerCurves", lambda: ui.LayerCurves("not a result")),
    ("ReplacedTokenView", lambda: ui.ReplacedTokenView(["not a result"])),
]
PROBE_DATA = [(f"a fine happy film {i}", "pos") for i in range(12)] + [
    (f"a dull sad film {i}", "neg") for i in range(12)
]


def _lens(m: dict[str, ModelBundle], kind: str = "causal-lm") -> TunedLens:
    """A fresh tuned lens (identity translators) for one of the tiny models."""
    return TunedLens.for_model(m[kind])


def _with_head(m: dict[str, ModelBundle], *names: str) -> ModelBundle:
    """The tiny masked LM (shared, read only) with fresh objective heads called ``names``."""
    bundle = m["masked-lm"]
    return dataclasses.replace(bundle, heads={n: make_head(n, bundle.config.hidden_size) for n in names})


def _scratch() -> Path:
    """An empty folder of its own (the catalogue's calls take no tmp_path)."""
    return Path(tempfile.mkdtemp(prefix="wb-bad-input-"))


def _probed(m: dict[str, ModelBundle]) -> Any:
    return probe_layers(m["masked-lm"], PROBE_DATA, progress=False)


PROJECTED = ["the cat sat", "a dog ran", "the bird sang", "a fish swam"]


def _attention(m: dict[str, ModelBundle]) -> Any:
    return attention(m["masked-lm"], "the cat sat on the mat")


def _lens_result(m: dict[str, ModelBundle]) -> Any:
    return logit_lens(m["causal-lm"], "the cat sat on the")


def _attribution(m: dict[str, ModelBundle]) -> Any:
    return attribute(m["classifier"], "the cat sat on the mat", 1, method="occlusion")


def _evaluation(m: dict[str, ModelBundle]) -> Any:
    return evaluate_classifier(m["classifier"], ["the cat sat", "a dog ran"], [0, 1])


def _history() -> TrainingHistory:
    return TrainingHistory([{"kind": "train", "step": s, "loss": 3.0 - s, "learning_rate": 1e-3} for s in (1, 2)])


def _vector(m: dict[str, ModelBundle], kind: str = "causal-lm") -> Any:
    """A steering vector of one of the tiny models, at its first layer."""
    return steering_vector(m[kind], "the cat", "the dog", 0)


def _with_kernel_budget(memory_mb: Any, call: Callable[[], Any]) -> Any:
    """``call()`` with the kernel's budget set to ``memory_mb``, and the old budget given back after."""
    old = set_memory_budget(memory_mb)
    try:
        return call()
    finally:
        set_memory_budget(old)


@pytest.mark.parametrize("name, call", NAMES_AND_VALUES + FIGURES + OBJECTIVES)
def test_bad_names_and_values_get_the_workbenchs_error_and_one_sentence(
    models: dict[str, ModelBundle], name: str, call: Callable[[dict[str, ModelBundle]], Any]
):
    with pytest.raises(WorkbenchError) as caught:
        call(models)
    assert _is_one_sentence(caught.value), str(caught.value)
    if "budget" in name or "memory_mb" in name:
        assert isinstance(caught.value, MemoryBudgetError), repr(caught.value)


@pytest.mark.parametrize("view, call", VIEWS)
def test_views_given_the_wrong_thing_say_what_they_take(view: str, call: Callable[[], Any]):
    with pytest.raises(TypeError) as caught:
        call()
    assert "takes" in str(caught.value) and _is_one_sentence(caught.value)


@pytest.fixture
def probe(models: dict[str, ModelBundle]) -> ui.MaskProbe:
    view = ui.MaskProbe(models["masked-lm"], "the [MASK]")
    assert view.result["predictions"] and not view.error
    return view


@pytest.mark.parametrize("case", list(BAD_STRINGS))
def test_the_mask_probe_shows_one_sentence_and_no_guesses_for_bad_text(probe: ui.MaskProbe, case: str):
    probe.text = BAD_STRINGS[case]
    assert _is_one_sentence(probe.error) and probe.result == {}


@pytest.mark.parametrize("case", [case for case in BAD_TEXT if case not in BAD_STRINGS])
def test_the_mask_probe_refuses_what_is_not_text_and_keeps_its_guesses(probe: ui.MaskProbe, case: str):
    shown = probe.result
    with pytest.raises(traitlets.TraitError):
        probe.text = BAD_TEXT[case]  # the text box only ever sends strings; Python code could send anything
    assert probe.text == "the [MASK]" and probe.result == shown and not probe.error


@pytest.mark.parametrize("case", list(STRANGE_TEXT))
def test_the_mask_probe_asks_for_a_mask_in_strange_text_without_one(probe: ui.MaskProbe, case: str):
    probe.text = STRANGE_TEXT[case]
    assert _is_one_sentence(probe.error) and "[MASK]" in probe.error and probe.result == {}


@pytest.mark.parametrize("case", list(STRANGE_TEXT))
def test_the_mask_probe_guesses_the_mask_in_strange_text(probe: ui.MaskProbe, case: str):
    probe.text = _masked(STRANGE_TEXT[case])
    assert not probe.error and probe.result["text"] == probe.text
    (prediction,) = probe.result["predictions"]
    assert _is_distribution(prediction["probabilities"], 5)


def test_the_catalogue_tries_at_least_130_cases():
    # Counted from this file's parametrize tables, so it holds alone, under -k and in any order.
    cases = 0
    for name, test in list(globals().items()):
        if name.startswith("test_"):
            marks = [mark for mark in getattr(test, "pytestmark", []) if mark.name == "parametrize"]
            cases += math.prod(len(mark.args[1]) for mark in marks)
    assert cases >= 130, cases
