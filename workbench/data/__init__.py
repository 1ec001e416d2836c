"""Corpora, tokenizer training, language-model blocks, labelled data and their collators.

Example::

    from workbench.data import load_corpus, train_tokenizer, token_blocks, masked_lm_collator

    corpus = load_corpus("shakespeare", max_chars=1_000_000)
    tokenizer = train_tokenizer(corpus, kind="wordpiece", vocab_size=8000)
    blocks = token_blocks(tokenizer, corpus, block_size=128, add_special_tokens=True)
    collate = masked_lm_collator(tokenizer, seed=0)
"""

from workbench.data.classification import (
    ClassificationDataset,
    classification_collator,
    classification_dataset,
    length_grouped_order,
)
from workbench.data.corpus import CORPORA, Corpus, load_corpus
from workbench.data.labelled import LABELLED_DATASETS, LabelledData, load_labelled
from workbench.data.language_modeling import (
    CausalLMCollator,
    TokenBlocks,
    causal_lm_collator,
    masked_lm_collator,
    token_blocks,
)
from workbench.data.tokenizer import TOKENIZER_KINDS, train_tokenizer

__all__ = [
    "CORPORA",
    "LABELLED_DATASETS",
    "TOKENIZER_KINDS",
    "CausalLMCollator",
    "ClassificationDataset",
    "Corpus",
    "LabelledData",
    "TokenBlocks",
    "causal_lm_collator",
    "classification_collator",
    "classification_dataset",
    "length_grouped_order",
    "load_corpus",
    "load_labelled",
    "masked_lm_collator",
    "token_blocks",
    "train_tokenizer",
]
