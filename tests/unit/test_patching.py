"""Activation patching, causal tracing and attribution patching on tiny models: exact where exactness is owed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from workbench.errors import MemoryBudgetError, ProbeError
from workbench.explain.attribution_patching import attribution_patching
from workbench.explain.inputs import inference
from workbench.explain.metrics import bind_metric
from workbench.explain.patch_inputs import patch_inputs
from workbench.explain.patched_runs import PatchJob, PatchPlan, cached_run, run_fast, run_naive
from workbench.explain.patching import patch
from workbench.explain.sites import SITE_KINDS, parse_sites, site_map

if TYPE_CHECKING:
    from workbench.models import ModelBundle

CAUSAL = ("The cat sat on the mat and looked at the", "The dog sat on the mat and looked at the", (" dog", " cat"))
MASKED = ("The cat sat on the [MASK].", "The dog sat on the [MASK].", ("cat", "dog"))
KINDS = [k for k in SITE_KINDS if k != "embed"]


def gpt2(tokenizer: object, *, linear: bool = False) -> ModelBundle:
    """A 2-layer GPT-2 from its config; ``linear``: no layer norms, a linear MLP, and zero queries and keys
    (so every head attends uniformly): each site's effect on a logit difference is then affine, exactly."""
    import transformers

    from workbench.models import ModelBundle

    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=len(tokenizer),  # type: ignore[arg-type]
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=4,
        initializer_range=0.2 if linear else 0.02,
        activation_function="linear" if linear else "gelu_new",
        bos_token_id=0,
        eos_token_id=0,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    if linear:
        for block in model.transformer.h:
            block.ln_1, block.ln_2 = torch.nn.Identity(), torch.nn.Identity()
            with torch.no_grad():
                block.attn.c_attn.weight[:, : 2 * 32] = 0  # queries and keys
                block.attn.c_attn.bias[: 2 * 32] = 0
        model.transformer.ln_f = torch.nn.Identity()
        model = model.double()  # float64: what is left between the two maps is the metric's float32 rounding
    return ModelBundle(model, tokenizer, "causal-lm", "gpt2-linear" if linear else "gpt2-tiny", "test")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def models(tiny_gpt: ModelBundle, tiny_bert: ModelBundle) -> dict[str, ModelBundle]:
    return {"tiny-gpt": tiny_gpt, "tiny-bert": tiny_bert, "gpt2": gpt2(tiny_gpt.tokenizer)}


def texts(bundle: ModelBundle) -> tuple[str, str, tuple[str, str]]:
    return MASKED if bundle.kind == "masked-lm" else CAUSAL


@pytest.mark.parametrize("name", ["tiny-gpt", "tiny-bert", "gpt2"])
def test_patching_every_site_with_the_runs_own_activations_changes_nothing(models: dict, name: str):
    bundle = models[name]
    clean, corrupted, answers = texts(bundle)
    pair = patch_inputs(bundle, clean, corrupted)
    metric = bind_metric(bundle, answers)
    every_site = parse_sites(bundle.model, list(SITE_KINDS))
    heads = site_map(bundle.model).num_heads
    assert pair.corrupted_ids is not None and len(every_site) == 1 + 2 * (4 + heads)  # embed; per layer 4 kinds, heads
    jobs = [PatchJob(site, tuple(range(pair.length))) for site in every_site]  # the whole activation each time
    with inference(bundle.model):
        run = cached_run(bundle.model, pair.corrupted_ids, metric, pair.read, every_site)
        plan = PatchPlan(bundle.model, metric, pair.corrupted_ids, pair.read, [run], [run], [None])
        naive, fast = run_naive(plan, jobs), run_fast(plan, jobs)
    assert np.array_equal(naive, np.full(len(jobs), run.metric))  # bit for bit
    # the fast route's batched matrix products round differently in the last bits of a logit
    np.testing.assert_allclose(fast, run.metric, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["tiny-gpt", "tiny-bert", "gpt2"])
def test_patching_the_last_layers_stream_where_the_metric_reads_gives_the_clean_output(models: dict, name: str):
    bundle = models[name]
    clean, corrupted, answers = texts(bundle)
    last = len(bundle.tokenizer(clean)["input_ids"]) - 1
    result = patch(bundle, clean, corrupted, answers, sites="resid_post.1", route="naive")
    read = 6 if bundle.kind == "masked-lm" else last  # the mask, or the last position
    assert result.read_position == read and result.layers == [1]
    assert result.value(1, read) == 1.0  # bit for bit the clean run's output
    others = [p for p in result.columns if p != read]
    assert np.all(result.values[0, others] == 0.0)  # the other positions never reach the read
    # the fast route, read where the untrained model's two runs differ clearly (rounding is 1e-7 of a logit)
    read = 2 if bundle.kind == "masked-lm" else last
    fast = patch(bundle, clean, corrupted, answers, sites="resid_post.1", read_position=read)
    assert abs(fast.value(1, read) - 1.0) < 1e-5
    np.testing.assert_allclose(np.delete(fast.values[0], read), 0.0, atol=1e-5)


@pytest.mark.parametrize("name", ["tiny-gpt", "tiny-bert", "gpt2"])
def test_the_fast_route_equals_the_naive_route_for_every_kind(models: dict, name: str):
    bundle = models[name]
    clean, corrupted, answers = texts(bundle)
    read = 2 if bundle.kind == "masked-lm" else 1  # where the texts differ: a clear gap on an untrained model
    for kind in KINDS:
        for direction in ("denoise", "noise"):
            options = {"sites": kind, "direction": direction, "read_position": read, "positions": [0, 1, 2, 3, -1]}
            fast = patch(bundle, clean, corrupted, answers, **options)
            naive = patch(bundle, clean, corrupted, answers, route="naive", **options)
            assert abs(fast.clean_metric - fast.corrupted_metric) > 0.05
            assert fast.values.shape == ((2, site_map(bundle.model).num_heads) if kind == "head" else (2, 5))
            np.testing.assert_allclose(fast.values, naive.values, atol=1e-5, err_msg=f"{kind} {direction}")
            if bundle.kind == "causal-lm" and kind != "head":  # before the change the two runs are one
                assert np.all(naive.values[:, 0] == (0.0 if direction == "denoise" else 1.0))


def test_the_fast_route_equals_the_naive_route_in_causal_tracing(models: dict):
    bundle = models["gpt2"]
    clean, _, answers = CAUSAL
    for kind in ("resid_post", "head", "attn_out"):
        options = {"sites": kind, "subject": "cat", "samples": 3, "read_position": 1, "positions": [0, 1, 2]}
        fast = patch(bundle, clean, None, answers, **options)
        naive = patch(bundle, clean, None, answers, route="naive", **options)
        assert fast.method == "causal_tracing" and fast.subject == [1] and fast.samples == 3
        assert fast.corrupted is None and abs(fast.corrupted_metric - fast.clean_metric) > 0.05
        np.testing.assert_allclose(fast.values, naive.values, atol=1e-5, err_msg=kind)


def test_causal_tracing_is_reproducible_from_its_seed(tiny_gpt: ModelBundle):
    clean, _, answers = CAUSAL
    first = patch(tiny_gpt, clean, None, answers, subject="The cat", samples=2, positions=[0, 1, 5])
    again = patch(tiny_gpt, clean, None, answers, subject="The cat", samples=2, positions=[0, 1, 5])
    other = patch(tiny_gpt, clean, None, answers, subject="The cat", samples=2, positions=[0, 1, 5], seed=1)
    assert first.subject == [0, 1] and first.columns == [0, 1, 5] and first.patched_positions == [0, 1, 5]
    assert first.corrupted_metric == again.corrupted_metric and np.array_equal(first.values, again.values)
    assert other.corrupted_metric != first.corrupted_metric
    # patching the embedding of every noised token restores the clean run whatever the noise
    embed = patch(
        tiny_gpt, clean, None, answers, sites="embed", subject=[1], samples=2, route="naive", positions=[1, 2]
    )
    assert embed.value(0, 1) == 1.0 and embed.value(0, 2) == 0.0
    # its one row is labelled layer 0, and the result says it is the embeddings
    assert embed.layers == [0] and embed.of_embeddings and "token embeddings" in embed.note
    assert "of the embeddings" in repr(embed) and "strongest embeddings, position 1" in repr(embed)


@pytest.fixture(scope="module")
def linear(tiny_gpt: ModelBundle) -> ModelBundle:
    return gpt2(tiny_gpt.tokenizer, linear=True)


@pytest.mark.parametrize("kind", [*KINDS, "embed"])
def test_attribution_patching_equals_patching_on_a_linear_model(linear: ModelBundle, kind: str):
    clean, corrupted, answers = CAUSAL
    for direction in ("denoise", "noise"):
        full = patch(linear, clean, corrupted, answers, sites=kind, direction=direction)
        estimate = attribution_patching(
            linear, clean, corrupted, answers, sites=kind, direction=direction, against=full
        )
        assert estimate.method == "attribution_patching" and estimate.direction == direction
        assert abs(full.clean_metric - full.corrupted_metric) > 0.1
        assert np.abs(full.values).max() > 0.2  # something to agree on
        np.testing.assert_allclose(estimate.values, full.values, atol=1e-5, err_msg=direction)
        assert estimate.pearson_r is not None and estimate.pearson_r > 0.999999


def test_attribution_patching_is_an_estimate_on_a_real_model(tiny_gpt: ModelBundle):
    clean, corrupted, answers = CAUSAL
    full = patch(tiny_gpt, clean, corrupted, answers, read_position=1)
    estimate = attribution_patching(tiny_gpt, clean, corrupted, answers, read_position=1, against=full)
    assert estimate.values.shape == full.values.shape and estimate.pearson_r is not None
    assert estimate.pearson_r > 0.5 and not np.allclose(estimate.values, full.values, atol=1e-5)
    np.testing.assert_array_equal(estimate.values[:, 0], 0.0)  # the same token in both runs: no change to weigh


def test_texts_of_different_lengths_get_one_sentence_naming_the_tokens(tiny_gpt: ModelBundle):
    with pytest.raises(ProbeError) as caught:
        patch(tiny_gpt, "The cat sat on the mat.", "The hippopotamus sat on the mat.", (" dog", " cat"))
    message = str(caught.value)
    assert "' cat'" in message and "hippopotamus" not in message.split(" against ", maxsplit=1)[0]
    assert " against " in message and "\n" not in message and message.endswith(".")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"sites": ["resid_post.0", "mlp_out.1"]}, "one kind"),
        ({"direction": "sideways"}, "direction"),
        ({"route": "slow"}, "route"),
        ({"positions": [99]}, "position"),
        ({"subject": "cat"}, "causal tracing"),
        ({"batch_size": 0}, "batch_size"),
        ({"read_position": 40}, "read_position"),
    ],
)
def test_bad_options_get_one_sentence(tiny_gpt: ModelBundle, options: dict, words: str):
    clean, corrupted, answers = CAUSAL
    with pytest.raises(ProbeError, match=words) as caught:
        patch(tiny_gpt, clean, corrupted, answers, **options)
    assert "\n" not in str(caught.value) and str(caught.value).endswith(".")


def test_causal_tracing_without_a_subject_and_an_absent_subject_are_refused(tiny_gpt: ModelBundle):
    clean, _, answers = CAUSAL
    with pytest.raises(ProbeError, match="subject="):
        patch(tiny_gpt, clean, None, answers)
    with pytest.raises(ProbeError, match="not in the clean text"):
        patch(tiny_gpt, clean, None, answers, subject="Eiffel")
    with pytest.raises(ProbeError, match="samples"):
        patch(tiny_gpt, clean, None, answers, subject="cat", samples=0)


def test_a_patch_over_its_budget_is_refused_before_it_runs(tiny_gpt: ModelBundle):
    clean, corrupted, answers = CAUSAL
    with pytest.raises(MemoryBudgetError, match="memory_mb="):
        patch(tiny_gpt, clean, corrupted, answers, batch_size=10**6, memory_mb=1)


def test_attribution_patching_against_other_sites_is_refused(tiny_gpt: ModelBundle):
    clean, corrupted, answers = CAUSAL
    heads = patch(tiny_gpt, clean, corrupted, answers, sites="head.1", read_position=1)
    with pytest.raises(ProbeError, match="same sites"):
        attribution_patching(tiny_gpt, clean, corrupted, answers, sites="head", read_position=1, against=heads)
    with pytest.raises(ProbeError, match="corrupted text"):
        attribution_patching(tiny_gpt, clean, None, answers)  # type: ignore[arg-type]


def test_attribution_patching_against_patching_made_differently_is_refused(tiny_gpt: ModelBundle):
    clean, corrupted, answers = CAUSAL
    same = {"read_position": 1, "positions": [0, 1, 2]}
    cases = [
        (patch(tiny_gpt, clean, corrupted, answers, direction="noise", **same), {}, "same direction"),
        (patch(tiny_gpt, clean, corrupted, (" cat", " dog"), **same), {}, "same metric"),
        (patch(tiny_gpt, clean, corrupted, answers, read_position=2, positions=[0, 1, 2]), {}, "read the metric"),
        (patch(tiny_gpt, clean, None, answers, subject="cat", samples=1, **same), {}, "method 'patching'"),
        (attribution_patching(tiny_gpt, clean, corrupted, answers, **same), {}, "method 'patching'"),
        (  # a head map: the same heads, each patched at other positions
            patch(tiny_gpt, clean, corrupted, answers, sites="head", read_position=1, positions=[0, 1]),
            {"sites": "head"},
            "same positions",
        ),
    ]
    for against, options, words in cases:
        with pytest.raises(ProbeError, match=words) as caught:
            attribution_patching(tiny_gpt, clean, corrupted, answers, **{**same, **options}, against=against)
        assert "\n" not in str(caught.value) and str(caught.value).endswith("."), words
    # made the same way, it is accepted
    full = patch(tiny_gpt, clean, corrupted, answers, direction="noise", **same)
    estimate = attribution_patching(tiny_gpt, clean, corrupted, answers, direction="noise", against=full, **same)
    assert estimate.pearson_r is not None and estimate.patched_positions == full.patched_positions == [0, 1, 2]


def test_a_head_map_has_a_row_per_layer_and_a_column_per_head(tiny_bert: ModelBundle):
    clean, corrupted, answers = MASKED
    result = patch(tiny_bert, clean, corrupted, answers, sites=["head.0.1", "head.1.0"], read_position=2)
    assert result.kind == "head" and result.layers == [0, 1] and result.columns == [0, 1]
    assert np.isnan(result.values[0, 0]) and np.isnan(result.values[1, 1])
    assert np.isfinite(result.values[0, 1]) and np.isfinite(result.values[1, 0])
    assert result.differing == [2] and result.to_dict()["values"][0][1] == pytest.approx(
        float(result.values[0, 1]), abs=1e-6
    )
    assert result.patched_positions == list(range(len(result.clean_tokens.text)))  # each head at every position


def test_a_partial_map_is_strict_json_with_none_where_no_run_filled_a_cell(tiny_bert: ModelBundle):
    clean, corrupted, answers = MASKED
    result = patch(tiny_bert, clean, corrupted, answers, sites=["head.0.1", "head.1.0"], read_position=2)
    back = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert back["values"][0][0] is None and back["values"][1][1] is None
    assert back["values"][1][0] == pytest.approx(float(result.values[1, 0]), abs=1e-6)
    assert back["patched_positions"] == result.patched_positions and back["pearson_r"] is None
