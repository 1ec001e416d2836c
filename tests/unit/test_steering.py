"""Steering: a mean-difference vector added to the residual stream, during generation, saved and loaded."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from workbench.errors import ProbeError
from workbench.explain.activations import record
from workbench.explain.generate import generate
from workbench.explain.inputs import inference
from workbench.explain.sites import Site, hooked
from workbench.explain.steering import SteeringVector, load_steering_vector, steering_vector

POSITIVE = ["the cat sat on the mat", "a cat slept"]
NEGATIVE = ["the dog ran in the park"]
PROMPT = "the cat"


@pytest.fixture(scope="module")
def gpt(tiny_gpt, sharpen):
    return sharpen(tiny_gpt)


@pytest.fixture(scope="module")
def vector(gpt):
    return steering_vector(gpt, POSITIVE, NEGATIVE, layer=0)


def test_the_vector_is_the_difference_of_the_mean_residual_streams(gpt, vector):
    def mean(prompts: list[str]) -> np.ndarray:
        return np.mean([record(gpt, p, "resid_post.0")["resid_post.0"].mean(0) for p in prompts], axis=0)

    expected = mean(POSITIVE) - mean(NEGATIVE)
    assert vector.vector.shape == (32,) and vector.vector.dtype == np.float32
    assert np.allclose(vector.vector, expected, atol=1e-6)
    assert vector.norm == pytest.approx(float(np.linalg.norm(expected)), rel=1e-5) and vector.norm > 0.1
    assert (vector.layer, vector.positive, vector.negative, vector.model) == (0, POSITIVE, NEGATIVE, "tiny-gpt")
    streams = [record(gpt, p, "resid_post.0")["resid_post.0"] for p in POSITIVE + NEGATIVE]
    assert vector.stream_norm == pytest.approx(np.mean([np.linalg.norm(s, axis=-1).mean() for s in streams]), 1e-5)


def test_a_coefficient_of_zero_gives_exactly_the_plain_generation(gpt, vector):
    out = generate(gpt, PROMPT, 6, temperature=1.0, seed=3, steer=(vector, 0.0))
    alone = generate(gpt, PROMPT, 6, temperature=1.0, seed=3)
    assert out.plain is not None and out.steer == {**out.steer, "layer": 0, "coefficient": 0.0}
    for run in (out, out.plain):
        assert [s.token_id for s in run.steps] == [s.token_id for s in alone.steps]
        assert [s.probability for s in run.steps] == [s.probability for s in alone.steps]
        assert [s.alternatives for s in run.steps] == [s.alternatives for s in alone.steps]


def test_steering_adds_coefficient_times_the_vector_to_the_stream_leaving_its_layer(gpt, vector):
    plain = record(gpt, PROMPT, ["resid_post.0", "resid_post.1"])
    added = torch.from_numpy(vector.vector) * 3.0
    with hooked(gpt.model, [(Site("resid_post", 0), lambda x: x + added)]):
        steered = record(gpt, PROMPT, ["resid_post.0", "resid_post.1"])
    assert np.allclose(steered["resid_post.0"], plain["resid_post.0"] + added.numpy(), atol=1e-6)
    assert np.abs(steered["resid_post.1"] - plain["resid_post.1"]).max() > 0.1  # it travels on through layer 1


def test_a_steered_first_token_has_the_probabilities_of_the_stream_plus_the_vector(gpt):
    """Steering the last layer: the first step's distribution is the unembedding of (last stream + c × vector)."""
    last = steering_vector(gpt, POSITIVE, NEGATIVE, layer=1)
    out = generate(gpt, PROMPT, 3, temperature=0, steer=(last, 5.0), alternatives=5)
    stream = torch.from_numpy(record(gpt, PROMPT, "resid_post.1")["resid_post.1"][-1])  # (hidden,)
    with inference(gpt.model):
        logits = gpt.model.lm_head(gpt.model.model.norm(stream + 5.0 * torch.from_numpy(last.vector)))
    probs = logits.softmax(-1)
    expected = probs.topk(5)
    assert [a for a, _ in out.steps[0].alternatives] == [gpt.tokenizer.decode([int(i)]) for i in expected.indices]
    assert np.allclose([p for _, p in out.steps[0].alternatives], expected.values.numpy(), atol=1e-6)
    assert out.steps[0].alternatives != out.plain.steps[0].alternatives


def test_steering_reaches_every_generated_token_as_a_full_steered_forward_does(gpt, vector):
    """With the key/value cache each step runs only the new token; it must be steered as a whole-text forward is."""
    out = generate(gpt, PROMPT, 6, temperature=0, steer=(vector, 4.0))
    ids = gpt.tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    added = torch.from_numpy(vector.vector) * 4.0
    chosen = []
    with inference(gpt.model), hooked(gpt.model, [(Site("resid_post", 0), lambda x: x + added)]):
        for _ in range(6):
            token = int(gpt.model(input_ids=ids).logits[0, -1].argmax())
            chosen.append(token)
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    assert [s.token_id for s in out.steps] == chosen
    assert [s.token_id for s in out.steps] != [s.token_id for s in out.plain.steps]


def test_a_steered_generation_shows_and_serialises_both_texts(gpt, vector):
    out = generate(gpt, PROMPT, 4, seed=1, steer=(vector, 4.0))
    shown = str(out)
    assert out.text in shown and out.plain.text in shown and "plain (same seed)" in shown
    assert f"{out.steps[0].probability:6.3f}" in shown and f"{out.plain.steps[0].probability:6.3f}" in shown
    data = json.loads(json.dumps(out.to_dict()))
    assert data["plain"]["completion"] == out.plain.completion and data["steer"]["coefficient"] == 4.0
    assert data["completion"] == out.completion
    assert generate(gpt, PROMPT, 2).to_dict()["plain"] is None


def test_a_saved_vector_loads_back_equal_and_is_a_safetensors_file(tmp_path, vector):
    path = vector.save(tmp_path / "cat.safetensors")
    loaded = load_steering_vector(path)
    assert np.array_equal(loaded.vector, vector.vector)
    assert loaded.to_dict() == vector.to_dict()
    assert list(load_file(str(path))) == ["vector"]  # only the tensor; the rest is text in the header
    assert SteeringVector.load(str(path)).layer == 0


def test_a_vector_from_another_model_is_refused_with_a_sentence(tmp_path, gpt, vector, make_tiny, tiny_bert):
    other_run = make_tiny("tiny-gpt", seed=7)  # the same shape, other weights
    with pytest.raises(ProbeError, match="another model of the same shape") as caught:
        generate(other_run, PROMPT, 2, steer=(load_steering_vector(vector.save(tmp_path / "v.safetensors")), 1.0))
    assert str(caught.value).endswith(".") and "\n" not in str(caught.value)
    with pytest.raises(ProbeError, match="ModernBertForMaskedLM"):
        vector.check(tiny_bert)
    half = dataclasses.replace(gpt, model=copy.deepcopy(gpt.model).to(torch.bfloat16))
    vector.check(half)  # the same weights in another precision are the same model


@pytest.mark.parametrize(
    "steer, words",
    [
        (lambda v: (v, math.nan), "finite number, got nan"),
        (lambda v: (v, math.inf), "finite number"),
        (lambda v: (v, "strong"), "finite number"),
        (lambda v: (v, True), "finite number"),
        (lambda v: v, "is a pair"),
        (lambda v: (v.vector, 1.0), "must be a SteeringVector"),
        (lambda v: (dataclasses.replace(v, layer=5), 1.0), "layer 5 is out of range"),
        (lambda v: (dataclasses.replace(v, vector=v.vector[:8]), 1.0), "has shape"),
    ],
)
def test_bad_steering_gets_one_sentence(gpt, vector, steer, words):
    with pytest.raises(ProbeError, match=words) as caught:
        generate(gpt, PROMPT, 2, steer=steer(vector))
    assert str(caught.value).endswith(".") and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda b, tmp: steering_vector(b, POSITIVE, NEGATIVE, layer=2), "Layer 2 is out of range"),
        (lambda b, tmp: steering_vector(b, POSITIVE, NEGATIVE, layer="last"), "layer must be"),
        (lambda b, tmp: steering_vector(b, [], NEGATIVE, layer=0), "positive prompts are"),
        (lambda b, tmp: steering_vector(b, POSITIVE, ["the dog", ""], layer=0), "negative prompt is empty"),
        (lambda b, tmp: load_steering_vector(tmp / "none.safetensors"), "There is no steering vector"),
        (lambda b, tmp: load_steering_vector(_write(tmp / "junk.safetensors")), "not a steering vector"),
    ],
)
def test_bad_steering_vector_input_gets_one_sentence(gpt, tmp_path, call, words):
    with pytest.raises(ProbeError, match=words) as caught:
        call(gpt, tmp_path)
    assert str(caught.value).endswith(".") and "\n" not in str(caught.value)


def _write(path):
    path.write_bytes(b"not a safetensors file")
    return path
