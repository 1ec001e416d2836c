"""Sentence pairs: consecutive segments, half of them changed (a random next segment, or swapped), balanced and
reproducible from a seed, written [CLS] first [SEP] second [SEP] with segment ids, and padded by the collator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.data.sentence_pairs import (
    pair_ids,
    segment_limit,
    sentence_pair_collator,
    sentence_pairs,
    text_segments,
)
from workbench.errors import DataError

# Twelve different texts: no segment repeats another, so every swap and every random next is visible.
TEXTS = [f"Line {word} of the play speaks of the {thing}." for word in ("one", "two", "three") for thing in "abcd"]


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    return tiny_bert.tokenizer


def _segment_texts(tokenizer, pairs, index):
    return tokenizer.decode(pairs.segments[index])


@pytest.mark.parametrize("texts", [TEXTS, TEXTS[:11]], ids=["11 pairs", "10 pairs"])
@pytest.mark.parametrize("objective", ["next-sentence", "sentence-order"])
def test_pairs_are_balanced_to_within_one(tokenizer, texts, objective):
    pairs = sentence_pairs(tokenizer, texts, 64, objective=objective, seed=3)
    assert len(pairs) == len(texts) - 1  # one pair per two consecutive segments
    as_written = int(pairs.labels.sum())
    assert as_written == (len(pairs) + 1) // 2
    assert pairs.to_dict()["as_written"] == as_written


def test_the_same_seed_gives_the_same_pairs_and_another_seed_other_ones(tokenizer):
    def draw(seed):
        pairs = sentence_pairs(tokenizer, TEXTS, 64, objective="next-sentence", seed=seed)
        return np.stack([pairs.firsts, pairs.seconds, pairs.labels])  # (3, pairs)

    np.testing.assert_array_equal(draw(0), draw(0))
    assert not np.array_equal(draw(0), draw(1))


def test_next_sentence_keeps_the_true_next_exactly_where_the_label_is_1(tokenizer):
    corpus = TEXTS * 2  # segment 12 repeats segment 0: a "random next" must not repeat the true next's tokens
    pairs = sentence_pairs(tokenizer, corpus, 64, objective="next-sentence", seed=0)
    assert np.array_equal(pairs.firsts, np.arange(len(pairs)))  # the first part is never moved
    for i, (second, label) in enumerate(zip(pairs.seconds, pairs.labels, strict=True)):
        if label == 1:
            assert second == i + 1
        else:
            assert second not in (i, i + 1)
            assert pairs.segments[second] != pairs.segments[i + 1]


def test_sentence_order_swaps_exactly_the_pairs_labelled_0(tokenizer):
    pairs = sentence_pairs(tokenizer, TEXTS, 64, objective="sentence-order", seed=0)
    index = np.arange(len(pairs))
    swapped = pairs.labels == 0
    np.testing.assert_array_equal(pairs.firsts, np.where(swapped, index + 1, index))
    np.testing.assert_array_equal(pairs.seconds, np.where(swapped, index, index + 1))
    item = pairs[int(np.flatnonzero(swapped)[0])]
    ids = item["input_ids"].tolist()
    sep = ids.index(tokenizer.sep_token_id)
    i = int(np.flatnonzero(swapped)[0])
    assert ids[1:sep] == pairs.segments[i + 1] and ids[sep + 1 : -1] == pairs.segments[i]


def test_a_pair_is_written_cls_first_sep_second_sep_with_segment_ids(tokenizer):
    ids, segments = pair_ids(tokenizer, [10, 11, 12], [20, 21])
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert ids == [cls, 10, 11, 12, sep, 20, 21, sep]
    assert segments == [0, 0, 0, 0, 0, 1, 1, 1]
    pairs = sentence_pairs(tokenizer, TEXTS, 64, seed=0)
    item = pairs[0]
    expected = pair_ids(tokenizer, pairs.segments[pairs.firsts[0]], pairs.segments[pairs.seconds[0]])
    assert item["input_ids"].tolist() == expected[0]
    assert item["token_type_ids"].tolist() == expected[1]
    assert item["pair_label"] == pairs.labels[0]


def test_long_texts_are_cut_at_sentence_ends_so_every_pair_fits_the_block(tokenizer):
    sentences = ["The cat sat on the mat.", "A dog ran in the park.", "The dog slept.", "To be, or not to be."]
    long = " ".join(sentences * 3)
    block = 40  # segments of at most 18 tokens: two or three of these sentences
    limit = segment_limit(block)
    segments = text_segments(tokenizer, [long, "A dog ran."], limit)
    assert len(segments) > 2  # the long text was cut
    period = tokenizer.convert_tokens_to_ids(".")
    assert all(len(s) <= limit for s in segments)
    assert all(s[-1] == period for s in segments)  # every piece ends a sentence
    assert any(s[:-1].count(period) > 0 for s in segments)  # and holds as many whole sentences as fit
    assert sum(len(s) for s in segments) == len(tokenizer(long + " A dog ran.", add_special_tokens=False)["input_ids"])
    pairs = sentence_pairs(tokenizer, [long, "A dog ran."], block, seed=0)
    assert max(len(pairs[i]["input_ids"]) for i in range(len(pairs))) <= block


def test_a_sentence_longer_than_a_segment_is_cut_inside_into_equal_pieces(tokenizer):
    words = " ".join(["cat"] * 30)  # one sentence of 30 tokens, no sentence end
    assert [len(s) for s in text_segments(tokenizer, [words], 8)] == [8, 8, 7, 7]
    before = "The dog slept. " + " ".join(["cat"] * 9) + "."  # 4 tokens, then a sentence of 10
    assert [len(s) for s in text_segments(tokenizer, [before], 8)] == [4, 5, 5]


def test_a_corpus_of_one_segment_is_refused_with_a_sentence(tokenizer):
    with pytest.raises(DataError, match=r"gives 1 segment, and a next-sentence pair needs two consecutive ones"):
        sentence_pairs(tokenizer, ["Only one text here."], 64)


def test_a_tokenizer_without_cls_and_sep_is_refused(tiny_gpt):
    with pytest.raises(DataError, match=r"lacks \[CLS\]"):
        sentence_pairs(tiny_gpt.tokenizer, TEXTS, 64)


def test_an_unknown_objective_is_refused(tokenizer):
    with pytest.raises(DataError, match="objective must be one of next-sentence, sentence-order"):
        sentence_pairs(tokenizer, TEXTS, 64, objective="next-word")


def test_the_collator_pads_on_the_right_and_adds_segment_ids_only_when_asked(tokenizer):
    pairs = sentence_pairs(tokenizer, ["A cat.", "The dog ran far away from the house.", "It slept."], 64, seed=0)
    items = [pairs[0], pairs[1]]
    lengths = [len(item["input_ids"]) for item in items]
    batch = sentence_pair_collator(tokenizer, token_type_ids=True)(items)
    assert batch["input_ids"].shape == (2, max(lengths))
    for row, (item, n) in enumerate(zip(items, lengths, strict=True)):
        assert torch.equal(batch["input_ids"][row, :n], item["input_ids"])
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (max(lengths) - n)
        assert (batch["input_ids"][row, n:] == tokenizer.pad_token_id).all()
        assert torch.equal(batch["token_type_ids"][row, :n], item["token_type_ids"])
    assert batch["pair_labels"].tolist() == [items[0]["pair_label"], items[1]["pair_label"]]
    assert "token_type_ids" not in sentence_pair_collator(tokenizer, token_type_ids=False)(items)
