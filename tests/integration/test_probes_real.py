"""Probes on SmolLM2: the next token, the logit lens and generation on a real 30-layer model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.explain import generate, logit_lens, next_token
from workbench.models import load_model

pytestmark = pytest.mark.assets


@pytest.fixture(scope="module")
def smollm2():
    return load_model("smollm2-135m")


def test_next_token_puts_paris_first_after_the_capital_of_france_is(smollm2):
    prediction = next_token(smollm2, "The capital of France is", top_k=5)
    assert prediction.tokens[0] == " Paris" and prediction.probabilities[0] > 0.5


def test_the_lens_shows_paris_arriving_in_the_last_layers_and_ending_as_the_models_output(smollm2):
    lens = logit_lens(smollm2, "The capital of France is", " Paris")
    assert lens.num_rows == 31 and lens.top_tokens[-1][-1][0] == " Paris"
    first = lens.first_layer_where_top()
    assert first is not None and first >= 20  # a late-layer answer, as the tuned-lens papers report for small LMs
    enc = smollm2.tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        probs = smollm2.model(**enc).logits[0].float().softmax(-1)
    np.testing.assert_allclose(lens.target_probs[-1], probs[:, lens.target].numpy(), atol=1e-5)


def test_greedy_generation_continues_with_paris(smollm2):
    out = generate(smollm2, "The capital of France is", max_new_tokens=3, temperature=0)
    assert out.steps[0].token == " Paris" and out.completion.startswith(" Paris")
