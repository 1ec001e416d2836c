"""The memory budget of attribute, generate, compare and compare_models: a call that cannot fit its
budget says so in one sentence before the model runs; the budget it names is enough; within a
budget the results are the ones without it; and ``set_memory_budget`` sets the default."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import numpy as np
import pytest

from workbench.compress import compare_models
from workbench.errors import MemoryBudgetError
from workbench.explain import (
    DEFAULT_MEMORY_MB,
    METHODS,
    attention,
    attention_rollout,
    attribute,
    attribute_many,
    compare,
    generate,
    memory_budget,
    set_memory_budget,
)
from workbench.explain.attribution.objective import make_objective
from workbench.explain.attribution.rollout import rollout_row
from workbench.models import ModelBundle

LONG = "the cat sat on the mat and looked at the dog. " * 35  # about 420 tokens: one row is over 1 MB
OPTIONS = {"shap": {"max_evals": 20}, "integrated_gradients": {"steps": 4}}  # quick, and options that do not matter


@pytest.fixture(scope="module")
def models(make_tiny) -> dict[str, ModelBundle]:
    """Tiny models that take long texts: a classifier, a masked LM and a causal LM of 1,024 positions."""
    return {
        "classifier": make_tiny(
            "tiny-bert", kind="classifier", label_names=["negative", "positive"], max_positions=1024
        ),
        "masked-lm": make_tiny("tiny-bert", max_positions=1024),
        "causal-lm": make_tiny("tiny-gpt", max_positions=1024),
    }


@pytest.fixture
def kernel_budget() -> Iterator[None]:
    """Gives the kernel's budget back as it was, whatever the test set."""
    before = memory_budget()
    yield
    set_memory_budget(before)


@contextlib.contextmanager
def forwards(*bundles: ModelBundle) -> Iterator[list[str]]:
    """Every module call of the models while inside (fast routes call the embeddings too), by module name."""
    calls: list[str] = []
    handles = [
        module.register_forward_pre_hook(lambda m, args, name=name: calls.append(name))
        for bundle in bundles
        for name, module in bundle.model.named_modules()
    ]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def refused(call, *bundles: ModelBundle) -> tuple[str, int]:
    """The sentence of the MemoryBudgetError ``call`` raises, and the megabytes it says it needs; asserts
    that no module of the models ran first."""
    with forwards(*bundles) as calls, pytest.raises(MemoryBudgetError) as caught:
        call()
    assert calls == [], calls[:5]
    sentence = str(caught.value)
    match = re.search(r"needs about ([\d,]+) MB, more than its memory budget of ([\d,]+) MB: use .+", sentence)
    assert match and "\n" not in sentence and sentence.endswith("for the whole kernel)."), sentence
    return sentence, int(match.group(1).replace(",", ""))


def _masked(kind: str, text: str) -> str:
    return text + " [MASK]" if kind == "masked-lm" else text


def _tokens(bundle: ModelBundle, text: str) -> int:
    return len(bundle.tokenizer(text)["input_ids"])


# ------------------------------------------------------------------------------------------ attribute


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("kind", ["classifier", "causal-lm"])
def test_every_attribution_method_refuses_a_budget_it_cannot_fit_before_the_model_runs(models, kind, method):
    bundle = models[kind]
    sentence, needed = refused(
        lambda: attribute(bundle, LONG, method=method, memory_mb=1, **OPTIONS.get(method, {})), bundle
    )
    assert sentence.startswith(f"The {method} attribution on {_tokens(bundle, LONG):,} tokens of {bundle.name} needs")
    assert "a shorter text" in sentence and needed > 1
    if method == "shap":
        assert "fewer max_evals" in sentence


def test_gradient_methods_count_every_layers_activations(models):
    bundle = models["classifier"]
    _, needed = refused(
        lambda: attribute(bundle, LONG, method="gradient_x_input", faithfulness=False, memory_mb=1), bundle
    )
    cfg, n = bundle.model.config, _tokens(bundle, LONG)
    inter = getattr(cfg, "intermediate_size", None) or 4 * cfg.hidden_size
    one_layer = 4 * n * (8 * cfg.hidden_size + 2 * inter + cfg.num_attention_heads * n)
    assert needed * 2**20 >= 2 * cfg.num_hidden_layers * one_layer


# occlusion scores one copy per token: at the budget named, one at a time (its batches are checked on a short
# text in test_attribution.py)
@pytest.mark.parametrize("method", [m for m in METHODS if m != "occlusion"])
def test_the_budget_the_sentence_names_is_enough_and_gives_the_same_scores(models, method, monkeypatch):
    from workbench.explain.attribution import gradients

    monkeypatch.setattr(gradients, "MAX_STEPS", 4)  # the steps given, not doubled: the same work in both calls
    bundle, options = models["causal-lm"], OPTIONS.get(method, {})
    _, needed = refused(lambda: attribute(bundle, LONG, method=method, memory_mb=1, **options), bundle)
    within = attribute(bundle, LONG, method=method, memory_mb=needed, faithfulness=False, **options)
    free = attribute(bundle, LONG, method=method, faithfulness=False, **options)
    assert within.target == free.target
    np.testing.assert_allclose(within.scores, free.scores, atol=1e-6)


def test_rollout_on_a_text_whose_maps_are_not_kept_reads_them_by_rows_and_gives_the_full_rollout(models):
    bundle = models["masked-lm"]
    text = _masked("masked-lm", LONG)
    small = attention(bundle, text, memory_mb=8)
    assert small.full_weights is None  # 8 MB keeps no full maps of 420 tokens: rollout reads rows
    full = attention_rollout(attention(bundle, text, keep_weights=True))[-1]
    n = small.num_tokens
    for start in (np.eye(n)[0], np.eye(n)[n - 1], np.full(n, 1 / n)):
        np.testing.assert_allclose(rollout_row(small, start, 1), start @ full, atol=1e-6)
    within = attribute(bundle, text, method="attention_rollout", memory_mb=8, faithfulness=False)
    free = attribute(bundle, text, method="attention_rollout", faithfulness=False)
    np.testing.assert_allclose(within.scores, free.scores, atol=1e-6)
    assert within.extra["read_from"].startswith("the mask at")


def test_batches_take_a_quarter_of_the_budget_as_before_at_the_default(models):
    bundle = models["causal-lm"]
    objective = make_objective(bundle, "the cat sat on the mat", "the")
    cfg = bundle.model.config
    inter = getattr(cfg, "intermediate_size", None) or getattr(cfg, "n_inner", None) or 4 * cfg.hidden_size
    for length in (8, 600):
        per_row = 4 * (8 * cfg.hidden_size + 2 * inter + cfg.num_attention_heads * length) * length
        assert objective.rows_per_batch(length) == 256 * 2**20 // per_row  # what 256 MB gave before
        assert objective.rows_per_batch(length, gradients=True) == max(
            1, 256 * 2**20 // 3 // (per_row * 2 * cfg.num_hidden_layers)
        )


def test_attribute_many_refuses_a_bad_budget_before_any_text(models):
    with pytest.raises(MemoryBudgetError, match="positive whole number"):
        attribute_many(models["classifier"], ["the cat"], method="occlusion", memory_mb=0, progress=False)


# ------------------------------------------------------------------------------------------- generate


def test_generate_refuses_a_budget_it_cannot_fit_before_the_model_runs(models):
    bundle = models["causal-lm"]
    sentence, _ = refused(lambda: generate(bundle, LONG, max_new_tokens=5, memory_mb=1), bundle)
    assert sentence.startswith(f"Generating 5 tokens after a prompt of {_tokens(bundle, LONG):,} tokens")
    assert "a shorter prompt or fewer max_new_tokens" in sentence


def test_generate_within_the_budget_it_names_gives_the_same_tokens(models):
    bundle = models["causal-lm"]
    _, needed = refused(lambda: generate(bundle, LONG, max_new_tokens=5, memory_mb=1), bundle)
    within = generate(bundle, LONG, max_new_tokens=5, seed=3, memory_mb=needed)
    free = generate(bundle, LONG, max_new_tokens=5, seed=3)
    assert [s.token_id for s in within.steps] == [s.token_id for s in free.steps] and len(free.steps) == 5
    np.testing.assert_allclose([s.probability for s in within.steps], [s.probability for s in free.steps])


def test_generate_counts_the_key_value_cache_of_the_new_tokens(models):
    bundle = models["causal-lm"]
    _, few = refused(lambda: generate(bundle, LONG, max_new_tokens=1, memory_mb=1), bundle)
    _, many = refused(lambda: generate(bundle, LONG, max_new_tokens=400, memory_mb=1), bundle)
    cfg = bundle.model.config
    cache = cfg.num_hidden_layers * 2 * cfg.num_attention_heads * 399 * (cfg.hidden_size // cfg.num_attention_heads) * 4
    assert many - few >= cache // 2**20


# -------------------------------------------------------------------------------------------- compare


def test_compare_refuses_before_any_model_runs(models):
    a, b = models["masked-lm"], models["causal-lm"]
    text = _masked("masked-lm", LONG)
    sentence, _ = refused(lambda: compare({"a": a, "b": b}, "next_token", text, memory_mb=1), a, b)
    assert sentence.startswith("The next_token probe on ") and "a shorter text" in sentence


def test_compare_hands_its_budget_to_a_probe_that_takes_one(models):
    bundle = models["causal-lm"]
    sentence, _ = refused(lambda: compare([bundle], "logit_lens", LONG, memory_mb=1), bundle)
    assert "lens" in sentence.lower()
    seen = []

    def probe(model, text, memory_mb=None):
        seen.append(memory_mb)
        return len(text)

    compare([bundle, bundle], probe, "the cat", memory_mb=77)
    assert seen == [77, 77]


def test_compare_within_the_budget_it_names_gives_the_same_results(models):
    bundle = models["masked-lm"]
    text = _masked("masked-lm", LONG)
    _, needed = refused(lambda: compare([bundle], "fill_mask", text, memory_mb=1), bundle)
    within = compare([bundle], "fill_mask", text, memory_mb=needed)
    free = compare([bundle], "fill_mask", text)
    assert within.to_dict() == free.to_dict()


# ------------------------------------------------------------------------------------- compare_models


def test_compare_models_refuses_attention_drift_it_cannot_hold_before_any_model_runs(models):
    bundle = models["classifier"]
    sentence, needed = refused(
        lambda: compare_models(bundle, bundle, texts=[LONG], lengths=(8,), repeats=1, memory_mb=1), bundle
    )
    n = _tokens(bundle, LONG)
    assert sentence.startswith(f"Attention drift on {n:,} tokens of {bundle.name}") and "shorter texts" in sentence
    cfg = bundle.model.config
    maps = 4 * cfg.num_hidden_layers * cfg.num_attention_heads * n * n
    assert needed * 2**20 >= 2 * maps  # both models' full maps at least


def test_compare_models_within_the_budget_it_names_gives_the_same_report(models):
    bundle = models["classifier"]
    call = dict(texts=[LONG], lengths=(8,), repeats=1, attribution="gradient_x_input")
    _, needed = refused(lambda: compare_models(bundle, bundle, memory_mb=1, **call), bundle)
    within = compare_models(bundle, bundle, memory_mb=needed, **call)
    free = compare_models(bundle, bundle, **call)
    np.testing.assert_array_equal(within.attention_js, free.attention_js)
    assert within.spearman == free.spearman == [1.0] and within.attention_js.shape == (2, 2)
    assert within.examples[0]["original"] == free.examples[0]["original"]


# ------------------------------------------------------------------------------ the kernel's budget


def test_set_memory_budget_sets_the_default_of_later_calls(models, kernel_budget):
    bundle = models["causal-lm"]
    assert memory_budget() == DEFAULT_MEMORY_MB
    assert set_memory_budget(1) == DEFAULT_MEMORY_MB and memory_budget() == 1
    _, needed = refused(lambda: attribute(bundle, LONG, method="gradient_x_input", faithfulness=False), bundle)
    refused(lambda: generate(bundle, LONG, max_new_tokens=2), bundle)
    assert attribute(bundle, LONG, method="gradient_x_input", faithfulness=False, memory_mb=needed).scores.any()
    set_memory_budget(needed)
    result = attribute(bundle, LONG, method="gradient_x_input", faithfulness=False)
    assert result.scores.shape == (_tokens(bundle, LONG),) and result.scores.any()


@pytest.mark.parametrize("bad", [0, -5, "big", True, 1.5, None])
def test_a_bad_kernel_budget_is_refused_and_the_old_one_kept(bad, kernel_budget):
    set_memory_budget(300)
    with pytest.raises(MemoryBudgetError, match="positive whole number of megabytes"):
        set_memory_budget(bad)
    assert memory_budget() == 300


@pytest.mark.parametrize("bad", [0, -5, "big", True])
@pytest.mark.parametrize("call", ["attribute", "generate", "compare", "compare_models"])
def test_a_bad_memory_mb_is_one_memory_budget_error_before_the_model_runs(models, call, bad):
    clf, gpt = models["classifier"], models["causal-lm"]
    run = {
        "attribute": lambda: attribute(clf, "the cat", "positive", method="occlusion", memory_mb=bad),
        "generate": lambda: generate(gpt, "the cat", memory_mb=bad),
        "compare": lambda: compare([gpt], "next_token", "the cat", memory_mb=bad),
        "compare_models": lambda: compare_models(clf, clf, texts=["the cat"], memory_mb=bad),
    }[call]
    with forwards(clf, gpt) as calls, pytest.raises(MemoryBudgetError, match=f"got {re.escape(repr(bad))}"):
        run()
    assert calls == []
