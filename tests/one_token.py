"""A classifier that reads one token: p(positive) = sigmoid(2 * GAIN * number of "cat" tokens), exactly.

Attributions and faithfulness measures have known answers on it; ``one_token_classifier`` builds it on the
tiny-bert tokenizer.
"""

from __future__ import annotations

import math

import torch
from transformers import PretrainedConfig

from workbench.models import ModelBundle

GAIN = 1.5  # logit of "positive" per "cat" in the text


class OneTokenClassifier(torch.nn.Module):
    """p(positive) = sigmoid(2 * GAIN * number of 'cat' tokens); every other token is ignored."""

    def __init__(self, vocab: int, cat_id: int):
        super().__init__()
        self.config = PretrainedConfig(
            num_labels=2,
            hidden_size=4,
            num_attention_heads=1,
            num_hidden_layers=1,
            intermediate_size=4,
            max_position_embeddings=64,
            id2label={0: "negative", 1: "positive"},
            label2id={"negative": 0, "positive": 1},
        )
        self.embed = torch.nn.Embedding(vocab, 4)
        with torch.no_grad():
            self.embed.weight.zero_()
            self.embed.weight[cat_id, 0] = 1.0

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None):
        x = self.embed(input_ids) if inputs_embeds is None else inputs_embeds  # (batch, n, 4)
        cats = (x[..., 0] * attention_mask).sum(-1)  # (batch,)
        logits = torch.stack([-GAIN * cats, GAIN * cats], dim=-1)
        return type("Output", (), {"logits": logits})()


def one_token_classifier(make_tiny) -> ModelBundle:
    tokenizer = make_tiny("tiny-bert", layers=1, hidden=16).tokenizer
    cat = tokenizer(" cat", add_special_tokens=False)["input_ids"]
    cat = cat if len(cat) == 1 else tokenizer("cat", add_special_tokens=False)["input_ids"]
    assert len(cat) == 1
    return ModelBundle(OneTokenClassifier(len(tokenizer), cat[0]), tokenizer, "classifier", "one-token", "test")


def positive_probability(cats: int) -> float:
    """What the model gives "positive" for a text with ``cats`` "cat" tokens."""
    return 1 / (1 + math.exp(-2 * GAIN * cats))
