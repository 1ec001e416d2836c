"""workbench.data on tiny in-memory data: corpora, tokenizers, LM blocks, labelled data, collators."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from transformers import AutoTokenizer

from workbench.data import (
    Corpus,
    LabelledData,
    TokenBlocks,
    causal_lm_collator,
    classification_collator,
    classification_dataset,
    length_grouped_order,
    load_corpus,
    load_labelled,
    masked_lm_collator,
    token_blocks,
    train_tokenizer,
)
from workbench.errors import DataError

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "To be, or not to be: that is the question.",
    "A stitch in time saves nine, and the fox knows it.",
    "All the world's a stage, and all the men and women merely players.",
    "The lazy dog sleeps while the quick fox runs to the river.",
    "Now is the winter of our discontent made glorious summer.",
] * 4


@pytest.fixture(scope="module")
def wordpiece():
    return train_tokenizer(SENTENCES, kind="wordpiece", vocab_size=200)


@pytest.fixture(scope="module")
def bpe():
    return train_tokenizer(SENTENCES, kind="bpe", vocab_size=300)


def _pairs(n_per_class: dict[str, int]) -> list[tuple[str, str]]:
    return [(f"{label} example number {i}", label) for label, n in n_per_class.items() for i in range(n)]


# --- corpora -------------------------------------------------------------------------------


def test_corpus_from_a_list_keeps_each_string_as_a_document():
    corpus = load_corpus(["one line", "two\n\nparagraphs", "   "])
    assert corpus.texts == ["one line", "two\n\nparagraphs"]
    assert len(corpus) == 2 and list(corpus) == corpus.texts


def test_text_file_is_split_into_paragraphs_on_blank_lines(tmp_path):
    (tmp_path / "play.txt").write_text("ACT I.\r\n\r\nEnter Hamlet.\nHe speaks.\n\n  \n\nExit.\n", encoding="utf-8")
    corpus = load_corpus(tmp_path / "play.txt")
    assert corpus.name == "play"
    assert corpus.texts == ["ACT I.", "Enter Hamlet.\nHe speaks.", "Exit."]


def test_gutenberg_header_and_licence_are_stripped(tmp_path):
    book = (
        "The Project Gutenberg EBook of Hamlet\nlicence words\n"
        "*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\n\nTo be or not to be.\n\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\nmore licence\n"
    )
    (tmp_path / "hamlet.txt").write_text(book, encoding="utf-8")
    assert load_corpus(tmp_path / "hamlet.txt").texts == ["To be or not to be."]


def test_folder_reads_every_txt_file_in_name_order(tmp_path):
    (tmp_path / "b.txt").write_text("second", encoding="utf-8")
    (tmp_path / "a.txt").write_text("first", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not text", encoding="utf-8")
    corpus = load_corpus(tmp_path)
    assert corpus.texts == ["first", "second"]


def test_max_chars_truncates_the_corpus():
    corpus = load_corpus(["abcdef", "ghijkl", "mnop"], max_chars=8)
    assert corpus.texts == ["abcdef", "gh"] and corpus.num_chars == 8


def test_corpus_to_dict_is_a_summary_and_repr_hides_the_texts():
    corpus = load_corpus(["hello world", "again"])
    assert corpus.to_dict() == {"name": "texts", "documents": 2, "characters": 16}
    assert "hello" not in repr(corpus)


def test_empty_corpus_says_so():
    with pytest.raises(DataError, match="holds no text"):
        load_corpus(["", "  \n "])


def test_unknown_corpus_name_lists_the_known_names():
    with pytest.raises(DataError, match=r"Unknown corpus 'hamlet'.*rotten-tomatoes, shakespeare"):
        load_corpus("hamlet")


def test_missing_path_says_it_does_not_exist(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_corpus(tmp_path / "nowhere.txt")


def test_folder_without_txt_files_says_so(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no \.txt files"):
        load_corpus(tmp_path)


def test_corpus_list_with_a_non_str_item_names_its_position():
    with pytest.raises(DataError, match="Item 1 of the list is a int"):
        load_corpus(["fine", 3])


# --- tokenizers ----------------------------------------------------------------------------


def test_wordpiece_tokenizer_wraps_text_and_pairs_in_cls_and_sep(wordpiece):
    single = wordpiece.convert_ids_to_tokens(wordpiece("the fox")["input_ids"])
    pair = wordpiece.convert_ids_to_tokens(wordpiece("the fox", "the dog")["input_ids"])
    assert single[0] == "[CLS]" and single[-1] == "[SEP]"
    assert pair[0] == "[CLS]" and pair.count("[SEP]") == 2 and pair[-1] == "[SEP]"


def test_wordpiece_tokenizer_lowercases_and_has_the_bert_special_tokens(wordpiece):
    assert wordpiece.decode(wordpiece("The Quick FOX")["input_ids"], skip_special_tokens=True) == "the quick fox"
    assert (
        wordpiece.pad_token,
        wordpiece.unk_token,
        wordpiece.cls_token,
        wordpiece.sep_token,
        wordpiece.mask_token,
    ) == ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def test_bpe_tokenizer_keeps_case_and_decodes_any_text_exactly(bpe):
    text = "The Fox, café 日本 🙂!"
    assert bpe.decode(bpe(text)["input_ids"]) == text
    assert (bpe.bos_token, bpe.eos_token, bpe.unk_token, bpe.pad_token) == (
        "<|endoftext|>",
        "<|endoftext|>",
        "<|endoftext|>",
        "<pad>",
    )


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_tokenizer_round_trips_save_and_load(kind, wordpiece, bpe, tmp_path):
    tokenizer = {"wordpiece": wordpiece, "bpe": bpe}[kind]
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "Now is the winter, the quick fox!"
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert loaded.all_special_tokens == tokenizer.all_special_tokens
    assert loaded.model_max_length == tokenizer.model_max_length == 512


def test_tokenizer_vocabulary_is_no_larger_than_asked(wordpiece, bpe):
    assert 0 < len(wordpiece) <= 200 and 0 < len(bpe) <= 300


@pytest.mark.parametrize(("kind", "size", "minimum"), [("bpe", 100, "at least 258"), ("wordpiece", 10, "at least")])
def test_vocab_size_too_small_says_the_minimum(kind, size, minimum):
    with pytest.raises(DataError, match=f"vocab_size={size} is too small.*{minimum}"):
        train_tokenizer(SENTENCES, kind=kind, vocab_size=size)


def test_unknown_tokenizer_kind_lists_the_kinds():
    with pytest.raises(DataError, match=r"Unknown tokenizer kind 'unigram'.*wordpiece, bpe"):
        train_tokenizer(SENTENCES, kind="unigram")


def test_tokenizer_on_an_empty_corpus_says_so():
    with pytest.raises(DataError, match="holds no text"):
        train_tokenizer([" "], vocab_size=200)


# --- language-model blocks -----------------------------------------------------------------


def test_token_blocks_drop_the_partial_block(bpe):
    blocks = token_blocks(bpe, SENTENCES, block_size=16, add_special_tokens=False)
    assert blocks.corpus_tokens // 16 == len(blocks)
    assert blocks.num_tokens == len(blocks) * 16 <= blocks.corpus_tokens


def test_token_blocks_are_one_long_tensor_of_fixed_length_items(bpe):
    blocks = token_blocks(bpe, SENTENCES, block_size=16, add_special_tokens=False)
    assert isinstance(blocks, TokenBlocks) and blocks.blocks.dtype == torch.long
    assert blocks.blocks.shape == (len(blocks), 16)
    assert blocks[0]["input_ids"].shape == (16,)


def test_masked_lm_blocks_start_with_cls_and_end_with_sep(wordpiece):
    blocks = token_blocks(wordpiece, SENTENCES, block_size=12, add_special_tokens=True)
    assert (blocks.blocks[:, 0] == wordpiece.cls_token_id).all()
    assert (blocks.blocks[:, -1] == wordpiece.sep_token_id).all()
    assert len(blocks) == blocks.corpus_tokens // 10  # 10 content tokens per block


def test_causal_lm_blocks_join_documents_with_end_of_text(bpe):
    blocks = token_blocks(bpe, ["one two three four", "five six seven eight"], block_size=4, add_special_tokens=False)
    text = bpe.decode(blocks.blocks.flatten())
    assert "four<|endoftext|>five" in text.replace(" ", "")


def test_too_little_text_for_one_block_says_how_many_tokens(wordpiece):
    with pytest.raises(DataError, match=r"gives \d+ tokens, fewer than one block of 128"):
        token_blocks(wordpiece, ["a short text"], block_size=128, add_special_tokens=True)


def test_block_size_beyond_model_max_length_is_refused(wordpiece):
    with pytest.raises(DataError, match="longer than the tokenizer's model_max_length 512"):
        token_blocks(wordpiece, SENTENCES, block_size=1024, add_special_tokens=True)


def test_long_documents_tokenize_without_the_too_long_warning(capfd):
    tokenizer = train_tokenizer(SENTENCES, kind="wordpiece", vocab_size=200, model_max_length=16)
    blocks = token_blocks(tokenizer, [" ".join(SENTENCES)], block_size=16, add_special_tokens=True)
    assert len(blocks) > 5
    assert "Token indices sequence length" not in capfd.readouterr().err


# --- collators -----------------------------------------------------------------------------


def test_masked_lm_collator_masks_about_15_percent_with_80_10_10(wordpiece):
    generator = torch.Generator().manual_seed(0)
    content = torch.randint(5, len(wordpiece), (200, 62), generator=generator)  # ids past the special tokens
    cls = torch.full((200, 1), wordpiece.cls_token_id)
    sep = torch.full((200, 1), wordpiece.sep_token_id)
    original = torch.cat([cls, content, sep], dim=1)  # (200, 64)
    batch = masked_lm_collator(wordpiece, seed=0)([{"input_ids": row.clone()} for row in original])
    chosen = batch["labels"] != -100
    assert not chosen[:, 0].any() and not chosen[:, -1].any()  # never [CLS] or [SEP]
    assert abs(chosen.float().mean().item() * 64 / 62 - 0.15) < 0.01
    assert (batch["labels"][chosen] == original[chosen]).all()
    as_mask = (batch["input_ids"][chosen] == wordpiece.mask_token_id).float().mean().item()
    kept = (batch["input_ids"][chosen] == original[chosen]).float().mean().item()
    assert abs(as_mask - 0.8) < 0.03 and abs(kept - 0.1) < 0.03
    assert abs((1 - as_mask - kept) - 0.1) < 0.03  # the rest were replaced by random tokens


def test_masked_lm_collator_with_a_seed_repeats_its_masks(wordpiece):
    blocks = token_blocks(wordpiece, SENTENCES, block_size=12, add_special_tokens=True)
    examples = [blocks[i] for i in range(len(blocks))]
    first = masked_lm_collator(wordpiece, seed=3)(examples)
    again = masked_lm_collator(wordpiece, seed=3)(examples)
    assert torch.equal(first["input_ids"], again["input_ids"]) and torch.equal(first["labels"], again["labels"])


def test_masked_lm_collator_leaves_the_blocks_unchanged(wordpiece):
    blocks = token_blocks(wordpiece, SENTENCES, block_size=12, add_special_tokens=True)
    before = blocks.blocks.clone()
    masked_lm_collator(wordpiece, mlm_probability=0.9, seed=0)([blocks[i] for i in range(len(blocks))])
    assert torch.equal(blocks.blocks, before)


def test_masked_lm_collator_needs_a_mask_token(bpe):
    with pytest.raises(DataError, match="no mask token"):
        masked_lm_collator(bpe)


def test_causal_lm_collator_copies_input_ids_to_labels(bpe):
    blocks = token_blocks(bpe, SENTENCES, block_size=16, add_special_tokens=False)
    batch = causal_lm_collator(bpe)([blocks[0], blocks[1]])
    assert batch["input_ids"].shape == (2, 16)
    assert torch.equal(batch["labels"], batch["input_ids"])


def test_causal_lm_collator_pads_rows_of_different_length_with_ignored_labels(bpe):
    batch = causal_lm_collator(bpe)([{"input_ids": [5, 6, 7]}, {"input_ids": [8]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, bpe.pad_token_id, bpe.pad_token_id]]
    assert batch["labels"].tolist() == [[5, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


# --- labelled data -------------------------------------------------------------------------


def test_labelled_pairs_get_sorted_label_names():
    data = load_labelled([("good film", "positive"), ("bad film", "negative"), ("fine", "positive")])
    assert data.label_names == ["negative", "positive"] and data.labels == [1, 0, 1]
    assert data.class_counts() == {"negative": 1, "positive": 2}


def test_integer_labels_keep_their_numeric_order():
    data = load_labelled([("a", 10), ("b", 2), ("c", 0)])
    assert data.label_names == ["0", "2", "10"] and data.labels == [2, 1, 0]


def test_split_is_stratified_and_repeatable():
    data = load_labelled(_pairs({"ham": 80, "spam": 20}))
    train, validation = data.split(validation=0.1, seed=0)
    assert validation.class_counts() == {"ham": 8, "spam": 2}
    assert train.class_counts() == {"ham": 72, "spam": 18}
    assert set(train.texts).isdisjoint(validation.texts) and len(train) + len(validation) == 100
    assert data.split(validation=0.1, seed=0)[1].texts == validation.texts
    assert data.split(validation=0.1, seed=1)[1].texts != validation.texts


def test_split_fraction_outside_zero_and_one_is_refused():
    data = load_labelled(_pairs({"a": 5, "b": 5}))
    for fraction in (0, 1, 1.5, -0.1):
        with pytest.raises(DataError, match="between 0 and 1"):
            data.split(validation=fraction)


def test_labelled_csv_guesses_text_and_label_columns(tmp_path):
    (tmp_path / "reviews.csv").write_text('id,Review,Sentiment\n1,"Great, truly",pos\n2,Awful,neg\n', encoding="utf-8")
    data = load_labelled(tmp_path / "reviews.csv")
    assert data.name == "reviews" and data.texts == ["Great, truly", "Awful"] and data.label_names == ["neg", "pos"]


def test_labelled_tsv_keeps_quotes_as_text(tmp_path):
    (tmp_path / "s.tsv").write_text('sentence\tlabel\nThe "Rock" rocks\t1\nDull\t0\n', encoding="utf-8")
    assert load_labelled(tmp_path / "s.tsv").texts == ['The "Rock" rocks', "Dull"]


def test_labelled_jsonl_reads_the_columns_it_is_told(tmp_path):
    lines = [{"body": "yes", "y": 1}, {"body": "no", "y": 0}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    data = load_labelled(tmp_path / "d.jsonl", text_column="body", label_column="y")
    assert data.texts == ["yes", "no"] and data.labels == [1, 0]


def test_labelled_file_without_label_column_names_its_columns(tmp_path):
    (tmp_path / "d.csv").write_text("text,score\nhello,3\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no label column.*'text', 'score'"):
        load_labelled(tmp_path / "d.csv")


def test_labelled_file_without_text_column_names_its_columns(tmp_path):
    (tmp_path / "d.csv").write_text("body,label\nhello,1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no text column.*'body', 'label'"):
        load_labelled(tmp_path / "d.csv")


def test_labelled_file_of_another_kind_is_refused(tmp_path):
    (tmp_path / "d.xlsx").write_bytes(b"PK")
    with pytest.raises(DataError, match=r"\.csv, \.tsv, \.jsonl"):
        load_labelled(tmp_path / "d.xlsx")


def test_a_single_class_is_refused():
    with pytest.raises(DataError, match="at least two classes"):
        load_labelled([("a", "x"), ("b", "x")])


def test_empty_labelled_data_says_so():
    with pytest.raises(DataError, match="holds no examples"):
        load_labelled([])


def test_a_text_that_is_not_str_is_refused():
    with pytest.raises(DataError, match="example 1 is a int"):
        load_labelled([("fine", "a"), (7, "b")])


def test_unknown_labelled_name_lists_the_known_names():
    with pytest.raises(DataError, match=r"Unknown data set 'imdb'.*movie-snippets, rotten-tomatoes, sms-spam"):
        load_labelled("imdb")


def test_labelled_to_dict_is_a_summary():
    data = load_labelled(_pairs({"a": 2, "b": 3}))
    assert data.to_dict() == {
        "name": "examples",
        "examples": 5,
        "label_names": ["a", "b"],
        "class_counts": {"a": 2, "b": 3},
    }
    assert isinstance(data, LabelledData) and "example number" not in repr(data)


# --- classification ------------------------------------------------------------------------


def test_classification_dataset_truncates_but_does_not_pad(wordpiece):
    data = load_labelled([("the fox " * 20, "long"), ("dog", "short")])
    dataset = classification_dataset(wordpiece, data, max_length=8)
    assert dataset.lengths == [8, 3]
    assert dataset[1] == {"input_ids": dataset[1]["input_ids"], "attention_mask": [1, 1, 1], "labels": 1}


def test_classification_collator_pads_to_the_longest_in_the_batch(wordpiece):
    data = load_labelled([("the quick brown fox", "a"), ("dog", "b")])
    batch = classification_collator(wordpiece)([*classification_dataset(wordpiece, data)])
    assert batch["input_ids"].shape == (2, 6)
    assert batch["attention_mask"].tolist()[1] == [1, 1, 1, 0, 0, 0]
    assert batch["labels"].tolist() == [0, 1]


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("block_size", lambda tok, n: token_blocks(tok, SENTENCES, block_size=n, add_special_tokens=False)),
        ("max_length", lambda tok, n: classification_dataset(tok, load_labelled([("a", "x"), ("b", "y")]), n)),
    ],
)
def test_both_datasets_refuse_a_length_in_the_same_sentence(wordpiece, name, build):
    limit = wordpiece.model_max_length
    with pytest.raises(DataError, match=rf"^{name} {limit + 1} is longer .* use {name} of at most {limit}\.$"):
        build(wordpiece, limit + 1)
    for bad in (1, True, 2.5):
        with pytest.raises(DataError, match=rf"^{name} must be a whole number of at least 2, not {bad!r}\.$"):
            build(wordpiece, bad)


def test_length_grouped_order_refuses_a_batch_size_that_is_not_a_positive_whole_number():
    for bad in (0, False, "8"):
        with pytest.raises(DataError, match=r"^batch_size must be a positive whole number, not "):
            length_grouped_order([1, 2, 3], batch_size=bad)


def test_length_grouped_order_is_a_seeded_permutation():
    lengths = [(i * 37) % 101 for i in range(1000)]
    order = length_grouped_order(lengths, batch_size=8, seed=0)
    assert sorted(order) == list(range(1000))
    assert order == length_grouped_order(lengths, batch_size=8, seed=0)
    assert order != length_grouped_order(lengths, batch_size=8, seed=1)


def test_length_grouped_order_groups_similar_lengths_and_keeps_the_short_batch_last():
    lengths = [(i * 37) % 101 for i in range(1003)]
    order = length_grouped_order(lengths, batch_size=8, seed=0)
    batches = [order[i : i + 8] for i in range(0, len(order), 8)]
    spreads = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches[:-1]]
    assert sum(spreads) / len(spreads) < 10  # random batches of 8 would spread ~80
    assert len(batches[-1]) == 3


# --- the wall ------------------------------------------------------------------------------


def test_importing_data_loads_no_jupyter_modules():
    code = "import sys, workbench.data; print([m for m in ('ipywidgets', 'IPython', 'plotly') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_corpus_is_frozen():
    corpus = Corpus(name="x", texts=["a"])
    with pytest.raises(AttributeError):
        corpus.name = "y"
