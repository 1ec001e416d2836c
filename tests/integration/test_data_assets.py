"""workbench.data on the real data sets (fetched into the cache once)."""

from __future__ import annotations

import csv

import pytest

from workbench import assets
from workbench.data import load_corpus, load_labelled, token_blocks, train_tokenizer

pytestmark = pytest.mark.assets


def test_movie_snippets_have_10568_signed_sentences_in_balanced_classes():
    with open(assets.fetch("movie-snippets"), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert len(rows) == 10_605  # the file; 37 sentences with a crowd score of exactly 0 have no sign
    data = load_labelled("movie-snippets")
    assert len(data) == 10_568
    assert data.class_counts() == {"negative": 5_326, "positive": 5_242}
    counts = data.class_counts().values()
    assert (max(counts) - min(counts)) / len(data) < 0.05


def test_movie_snippets_are_decoded_as_utf8():
    texts = load_labelled("movie-snippets").texts
    assert any("Münch" in text for text in texts)
    assert not any("Ã" in text for text in texts)  # what latin-1 decoding would make of é, ü, ...


def test_shakespeare_gives_a_corpus_of_more_than_4_million_characters():
    corpus = load_corpus("shakespeare")
    assert corpus.num_chars > 4_000_000
    assert not any("gutenberg.org" in text for text in corpus.texts)  # metadata.txt is not read


def test_sms_spam_has_4837_messages_638_of_them_spam():
    data = load_labelled("sms-spam")
    assert len(data) == 4_837 and data.class_counts() == {"ham": 4_199, "spam": 638}


def test_rotten_tomatoes_keeps_fresh_and_rotten_and_drops_plot():
    data = load_labelled("rotten-tomatoes")
    assert data.label_names == ["fresh", "rotten"] and len(data) == 4_866


def test_wordpiece_on_shakespeare_gives_blocks_of_128():
    corpus = load_corpus("shakespeare", max_chars=1_000_000)
    tokenizer = train_tokenizer(corpus, kind="wordpiece", vocab_size=8000)
    assert len(tokenizer) == 8000
    blocks = token_blocks(tokenizer, corpus, block_size=128, add_special_tokens=True)
    assert blocks.blocks.shape == (len(blocks), 128) and len(blocks) > 1000
    assert (blocks.blocks == tokenizer.unk_token_id).float().mean() < 0.001  # the vocabulary covers the text
