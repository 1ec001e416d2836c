"""Ablation: knocking heads out through the head sites equals editing the output projection by hand."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch

from workbench.errors import ProbeError
from workbench.explain.ablation import ablate, ablate_each_head
from workbench.explain.activations import record
from workbench.explain.inputs import encode, inference, token_id
from workbench.explain.output_head import output_vocabulary
from workbench.explain.sites import Site, site_map

TEXTS = {"gpt": "the cat sat on the", "bert": "the cat [MASK] on the mat"}
READ = {"gpt": -1, "bert": 3}  # where each model's metric reads: after the last token, at the mask


@pytest.fixture(scope="module")
def models(tiny_gpt, tiny_bert, sharpen):
    return {"gpt": sharpen(tiny_gpt), "bert": sharpen(tiny_bert)}


def _logits_at(bundle, text: str, position: int) -> torch.Tensor:
    with inference(bundle.model):
        return bundle.model(**encode(bundle, text)).logits[0, position].float()  # (vocab,)


def _output_projection(model: torch.nn.Module, layer: int) -> torch.nn.Linear:
    return model.get_submodule(site_map(model).module_name(Site("attn_out", layer)))


@pytest.mark.parametrize("which", ["gpt", "bert"])
def test_ablating_no_heads_changes_nothing_bit_for_bit(models, which):
    result = ablate(models[which], TEXTS[which], [])
    assert result.heads == []
    assert result.metric_after == result.metric_before
    assert np.array_equal(result.after.probabilities, result.before.probabilities)
    assert result.after.token_ids == result.before.token_ids


@pytest.mark.parametrize("which", ["gpt", "bert"])
def test_zero_ablating_a_head_equals_zeroing_its_columns_of_the_output_projection(models, which):
    bundle, text = models[which], TEXTS[which]
    found = site_map(bundle.model)
    layer, head = 1, 1
    edited = copy.deepcopy(bundle.model)
    cols = slice(head * found.head_dim, (head + 1) * found.head_dim)
    with torch.no_grad():
        _output_projection(edited, layer).weight[:, cols] = 0
    expected = _logits_at(dataclasses.replace(bundle, model=edited), text, READ[which])
    plain = _logits_at(bundle, text, READ[which])
    assert (expected - plain).abs().max() > 1e-2  # the head matters: a wrong ablation could not pass unseen

    def logit_five(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, 5]

    result = ablate(bundle, text, [(layer, head)], target=logit_five)
    assert result.metric_before == pytest.approx(float(plain[5]), abs=1e-5)
    assert result.metric_after == pytest.approx(float(expected[5]), abs=1e-5)
    probs = expected.softmax(-1)
    assert result.after.token_ids == probs.topk(5).indices.tolist()
    assert np.allclose(result.after.probabilities, probs.topk(5).values.numpy(), atol=1e-6)


def test_heads_given_as_names_pairs_or_one_pair_are_the_same_heads(models):
    bundle, text = models["gpt"], TEXTS["gpt"]
    by_pairs = ablate(bundle, text, [(0, 1), (1, 0)])
    by_names = ablate(bundle, text, ["0.1", "head.1.0"])
    assert by_names.heads == by_pairs.heads == [(0, 1), (1, 0)]
    assert by_names.metric_after == by_pairs.metric_after != by_pairs.metric_before
    assert ablate(bundle, text, (0, 1)).heads == [(0, 1)]


@pytest.mark.parametrize("which", ["gpt", "bert"])
def test_the_default_target_is_the_probability_of_the_models_own_top_token(models, which):
    result = ablate(models[which], TEXTS[which], [(0, 0)])
    assert result.metric == f"probability({result.before.tokens[0]!r})"
    assert result.metric_before == pytest.approx(float(result.before.probabilities[0]), abs=1e-7)
    assert result.position == (len(models[which].tokenizer(TEXTS[which])["input_ids"]) - 1 if which == "gpt" else 3)
    json.dumps(result.to_dict())
    assert "0.0" in repr(result) and result.metric in repr(result)


@pytest.mark.parametrize("which, kind", [("gpt", "zero"), ("gpt", "mean"), ("bert", "zero")])
def test_ablating_each_head_in_one_batch_equals_ablating_them_one_at_a_time(models, which, kind):
    """The batched route (a layer's heads as copies in one forward, started at that layer) against plain runs."""
    bundle, text = models[which], TEXTS[which]
    pair = (" the", " cat") if which == "gpt" else ("the", "cat")
    reference = ["a dog ran in the park", "the mat"] if kind == "mean" else None
    effects = ablate_each_head(bundle, text, target=pair, kind=kind, reference=reference)
    found = site_map(bundle.model)
    assert effects.values.shape == (found.num_layers, found.num_heads)
    assert (effects.method, effects.kind, effects.columns) == ("ablation", "head", [0, 1])
    assert effects.patched_positions == list(range(len(effects.clean_tokens.text)))  # every position of the text
    for layer in range(found.num_layers):
        for head in range(found.num_heads):
            alone = ablate(bundle, text, [(layer, head)], target=pair, kind=kind, reference=reference)
            assert effects.value(layer, head) == pytest.approx(alone.change, abs=1e-5)
            assert effects.clean_metric == alone.metric_before
    assert np.abs(effects.values).max() > 1e-2


def test_batches_cut_smaller_by_the_budget_give_the_same_map(models, monkeypatch):
    from workbench.explain import ablation

    whole = ablate_each_head(models["gpt"], TEXTS["gpt"])
    monkeypatch.setattr(ablation, "BATCH_SHARE", 10**9)  # a share of the budget that holds a single copy
    one_by_one = ablate_each_head(models["gpt"], TEXTS["gpt"])
    assert np.allclose(one_by_one.values, whole.values, atol=1e-6) and np.abs(whole.values).max() > 1e-3


def test_mean_ablating_a_one_token_text_with_itself_as_reference_changes_nothing(models):
    """The mean over one position is that position's own value: the head is written back unchanged."""
    bundle = models["gpt"]
    assert len(bundle.tokenizer("a")["input_ids"]) == 1
    result = ablate(bundle, "a", [(0, 0), (1, 1)], kind="mean")
    assert result.metric_after == result.metric_before
    assert ablate(bundle, "a", [(0, 0), (1, 1)], kind="zero").metric_after != result.metric_before


def test_mean_ablation_equals_the_output_projection_given_the_heads_mean_as_a_bias(models):
    """A head held at a constant m adds W[:, head] @ m whatever the input: zero its columns, add that as a bias."""
    bundle, text = models["gpt"], TEXTS["gpt"]
    reference = ["a dog ran in the park", "the quick brown fox"]
    found = site_map(bundle.model)
    layer, head = 0, 1
    pooled = np.concatenate([record(bundle, r, f"head.{layer}.{head}")[f"head.{layer}.{head}"] for r in reference])
    mean = torch.from_numpy(pooled.mean(0))  # (head_dim,) over every position of every reference text
    edited = copy.deepcopy(bundle.model)
    projection = _output_projection(edited, layer)
    cols = slice(head * found.head_dim, (head + 1) * found.head_dim)
    with torch.no_grad():
        bias = projection.weight[:, cols] @ mean
        projection.weight[:, cols] = 0
        projection.bias = torch.nn.Parameter(bias if projection.bias is None else projection.bias + bias)
    expected = _logits_at(dataclasses.replace(bundle, model=edited), text, -1)
    answer = token_id(bundle.tokenizer, " the", output_vocabulary(bundle.model))
    result = ablate(bundle, text, [(layer, head)], kind="mean", target=lambda x: x[:, answer], reference=reference)
    assert result.metric_after == pytest.approx(float(expected[answer]), abs=1e-4)
    assert abs(result.metric_after - result.metric_before) > 1e-2
    assert result.reference == reference
    own_mean = ablate(bundle, text, [(layer, head)], kind="mean", target=lambda x: x[:, answer])  # the text's own
    assert own_mean.reference is None and abs(own_mean.metric_after - result.metric_after) > 1e-3


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda m: ablate(m["gpt"], "the cat", [(2, 0)]), "Layer 2 is out of range"),
        (lambda m: ablate(m["gpt"], "the cat", ["0.7"]), "Head 7 is out of range"),
        (lambda m: ablate(m["gpt"], "the cat", [(-1, 0)]), "out of range"),
        (lambda m: ablate(m["gpt"], "the cat", ["heads 3"]), "A head is a"),
        (lambda m: ablate(m["gpt"], "the cat", 3), "Heads are a list"),
        (lambda m: ablate(m["gpt"], "the cat", [(0, 0)], kind="half"), "kind must be"),
        (lambda m: ablate(m["gpt"], "the cat", [(0, 0)], reference="the dog"), "only for kind='mean'"),
        (lambda m: ablate(m["gpt"], "the cat", [(0, 0)], kind="mean", reference=[]), "non-empty list"),
        (lambda m: ablate(m["gpt"], "the cat", [(0, 0)], kind="mean", reference=[""]), "reference text is empty"),
        (lambda m: ablate(m["bert"], "the cat sat", [(0, 0)]), "has no mask"),
        (lambda m: ablate(m["gpt"], "", [(0, 0)]), "empty"),
        (lambda m: ablate_each_head(m["gpt"], "the cat", target=lambda logits: "high"), "one number per run"),
        (lambda m: ablate_each_head(m["gpt"], "the cat", target=[1, 2, 3]), "A metric is"),
        (lambda m: ablate(m["gpt"], "the cat", [(0, 0)], top_k=0), "top_k"),
    ],
)
def test_bad_ablation_input_gets_one_sentence(models, call, words):
    with pytest.raises(ProbeError, match=words) as caught:
        call(models)
    message = str(caught.value)
    assert message.endswith(".") and "\n" not in message


def test_the_options_are_keyword_only_so_a_kind_is_never_read_as_a_target(models):
    """``ablate`` and ``ablate_each_head`` once took kind and target in different orders: now neither by place."""
    with pytest.raises(TypeError, match="positional"):
        ablate_each_head(models["gpt"], "the cat", "mean")  # type: ignore[misc]
    with pytest.raises(TypeError, match="positional"):
        ablate(models["gpt"], "the cat", [(0, 0)], "mean")  # type: ignore[misc]


def test_a_classifier_cannot_be_ablated_for_a_next_token(tiny_classifier):
    with pytest.raises(ProbeError, match="needs a masked or causal language model"):
        ablate_each_head(tiny_classifier, "the cat")
