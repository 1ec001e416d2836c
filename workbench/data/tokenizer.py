"""Train a word-piece (BERT-style) or byte-level BPE (GPT-style) tokenizer on a corpus.

Example::

    tokenizer = train_tokenizer(load_corpus("shakespeare"), kind="wordpiece", vocab_size=8000)
    tokenizer.save_pretrained("runs/tok")   # AutoTokenizer.from_pretrained("runs/tok") loads it
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from workbench.data.checks import check_whole_number
from workbench.data.corpus import Corpus, load_corpus
from workbench.errors import DataError

__all__ = ["BPE_SPECIAL_TOKENS", "TOKENIZER_KINDS", "WORDPIECE_SPECIAL_TOKENS", "train_tokenizer"]

TOKENIZER_KINDS = ("wordpiece", "bpe")
WORDPIECE_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
BPE_END_OF_TEXT, BPE_PAD = "<|endoftext|>", "<pad>"
BPE_SPECIAL_TOKENS = (BPE_END_OF_TEXT, BPE_PAD)
_BYTE_ALPHABET = len(pre_tokenizers.ByteLevel.alphabet())  # 256: every byte is a token
_BATCH = 1000  # documents handed to the trainer at a time


def train_tokenizer(
    corpus: Corpus | Sequence[str],
    kind: str = "wordpiece",
    vocab_size: int = 8000,
    *,
    lowercase: bool | None = None,
    min_frequency: int = 2,
    model_max_length: int = 512,
) -> PreTrainedTokenizerFast:
    """Train a new tokenizer on ``corpus`` (a ``Corpus`` or a list of str).

    ``kind="wordpiece"``: BERT normalizer (lowercase unless ``lowercase=False``), [PAD] [UNK]
    [CLS] [SEP] [MASK], and encodings wrapped as ``[CLS] a [SEP]`` / ``[CLS] a [SEP] b [SEP]``.
    ``kind="bpe"``: byte-level BPE (case kept unless ``lowercase=True``) with ``<|endoftext|>``
    as bos, eos and unk and ``<pad>`` for padding. Returns a ``PreTrainedTokenizerFast`` that
    round-trips through ``save_pretrained`` / ``AutoTokenizer.from_pretrained``.
    Raises ``DataError`` for an unknown kind, a vocab_size too small for the special tokens
    and the corpus's alphabet, or an empty corpus.
    """
    if kind not in TOKENIZER_KINDS:
        raise DataError(f"Unknown tokenizer kind {kind!r}; choose one of: {', '.join(TOKENIZER_KINDS)}.")
    check_whole_number("vocab_size", vocab_size)
    check_whole_number("min_frequency", min_frequency)
    check_whole_number("model_max_length", model_max_length)
    texts = load_corpus(corpus).texts  # validates: str items, not empty
    if kind == "bpe":
        minimum = len(BPE_SPECIAL_TOKENS) + _BYTE_ALPHABET
        if vocab_size < minimum:
            raise DataError(
                f"vocab_size={vocab_size} is too small for a byte-level BPE tokenizer: its 256 bytes and "
                f"{len(BPE_SPECIAL_TOKENS)} special tokens need at least {minimum}; use at least {minimum} "
                "(a few thousand for real text)."
            )
        backend = _train_bpe(texts, vocab_size, min_frequency, lowercase=bool(lowercase))
    else:
        backend = _train_wordpiece(texts, vocab_size, min_frequency, lowercase=lowercase is not False)
    # The trainer keeps every character it saw even when vocab_size is smaller than that.
    if backend.get_vocab_size() > vocab_size:
        raise DataError(
            f"vocab_size={vocab_size} is too small for this corpus: the special tokens and its alphabet alone "
            f"take {backend.get_vocab_size()} entries; use vocab_size of at least {backend.get_vocab_size()} "
            "(a few thousand for real text)."
        )
    if kind == "bpe":
        return PreTrainedTokenizerFast(
            tokenizer_object=backend,
            model_max_length=model_max_length,
            bos_token=BPE_END_OF_TEXT,
            eos_token=BPE_END_OF_TEXT,
            unk_token=BPE_END_OF_TEXT,
            pad_token=BPE_PAD,
        )
    pad, unk, cls, sep, mask = WORDPIECE_SPECIAL_TOKENS
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=model_max_length,
        pad_token=pad,
        unk_token=unk,
        cls_token=cls,
        sep_token=sep,
        mask_token=mask,
    )


def _batches(texts: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(texts), _BATCH):
        yield texts[start : start + _BATCH]


def _train_wordpiece(texts: list[str], vocab_size: int, min_frequency: int, *, lowercase: bool) -> Tokenizer:
    _pad, unk, cls, sep, _mask = WORDPIECE_SPECIAL_TOKENS
    backend = Tokenizer(models.WordPiece(unk_token=unk, continuing_subword_prefix="##"))
    backend.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, lowercase=lowercase)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(WORDPIECE_SPECIAL_TOKENS),
        continuing_subword_prefix="##",
        show_progress=False,
    )
    backend.train_from_iterator(_batches(texts), trainer=trainer, length=len(texts))
    # The WordPiece trainer numbers its vocabulary in hash-map order, which changes from run to
    # run; renumber it (special tokens first, then sorted) so one corpus always gives one tokenizer.
    trained = backend.get_vocab()
    ordered = list(WORDPIECE_SPECIAL_TOKENS) + sorted(t for t in trained if t not in WORDPIECE_SPECIAL_TOKENS)
    backend.model = models.WordPiece(
        vocab={t: i for i, t in enumerate(ordered)}, unk_token=unk, continuing_subword_prefix="##"
    )
    cls_id, sep_id = backend.token_to_id(cls), backend.token_to_id(sep)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, cls_id), (sep, sep_id)],
    )
    backend.decoder = decoders.WordPiece(prefix="##")
    return backend


def _train_bpe(texts: list[str], vocab_size: int, min_frequency: int, *, lowercase: bool) -> Tokenizer:
    backend = Tokenizer(models.BPE())  # byte-level: no unknown token is ever needed
    if lowercase:
        backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(BPE_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_batches(texts), trainer=trainer, length=len(texts))
    return backend
