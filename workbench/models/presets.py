"""Tiny models built from config, with a tokenizer trained on a corpus: fast to train on a CPU."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.errors import ModelLoadError
from workbench.models.hf import ModelKind

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

    from workbench.data.corpus import Corpus

__all__ = ["build_preset"]

# The sizes the Trainer benchmark uses: 4 layers, hidden 256, 4 heads, vocabulary 8k.
_DEFAULTS = {"layers": 4, "hidden": 256, "heads": 4, "vocab_size": 8000, "max_positions": 512, "seed": 0}


def build_preset(
    name: str,
    *,
    kind: ModelKind | None,
    label_names: list[str] | None,
    corpus: Corpus | str | os.PathLike[str] | Sequence[str] | None,
    tokenizer: PreTrainedTokenizerBase | None,
    attn_implementation: str | None,
    **options: int,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, ModelKind]:
    """Build ``tiny-bert`` (ModernBERT-style encoder, wordpiece) or ``tiny-gpt`` (Llama, byte-level BPE).

    Returns (model, tokenizer, kind). Raises ``ModelLoadError`` for an unknown option, a size
    that is not a positive integer, or a kind the preset cannot be.
    """
    import torch
    import transformers

    from workbench.data import load_corpus

    unknown = sorted(set(options) - set(_DEFAULTS))
    if unknown:
        raise ModelLoadError(f"Unknown preset options {unknown}; the presets take: {', '.join(_DEFAULTS)}.")
    opts = {**_DEFAULTS, **options}
    for key in ("layers", "hidden", "heads", "vocab_size", "max_positions"):
        if not isinstance(opts[key], int) or opts[key] < 1:
            raise ModelLoadError(f"Preset option {key} must be a positive integer, got {opts[key]!r}.")
    if opts["hidden"] % opts["heads"]:
        raise ModelLoadError(f"hidden ({opts['hidden']}) must be divisible by heads ({opts['heads']}).")

    is_bert = name == "tiny-bert"
    default_kind: ModelKind = "masked-lm" if is_bert else "causal-lm"
    kind = kind or default_kind
    allowed: tuple[ModelKind, ...] = ("masked-lm", "encoder", "classifier") if is_bert else ("causal-lm", "classifier")
    if kind not in allowed:
        raise ModelLoadError(f"{name} cannot be built as {kind!r}; it can be: {', '.join(allowed)}.")

    if tokenizer is None:
        text = load_corpus(corpus if corpus is not None else "shakespeare")
        tokenizer = _cached_tokenizer(
            text, "wordpiece" if is_bert else "bpe", opts["vocab_size"], opts["max_positions"]
        )
    vocab = len(tokenizer)
    h, n_layers, n_heads = opts["hidden"], opts["layers"], opts["heads"]
    common: dict[str, Any] = {
        "vocab_size": vocab,
        "hidden_size": h,
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_heads,
        "intermediate_size": 4 * h,
        "max_position_embeddings": opts["max_positions"],
        "pad_token_id": tokenizer.pad_token_id,
    }
    if label_names is not None:
        common.update(
            num_labels=len(label_names),
            id2label=dict(enumerate(label_names)),
            label2id={n: i for i, n in enumerate(label_names)},
        )
    elif kind == "classifier":
        common.update(num_labels=2)
    if attn_implementation:
        common["attn_implementation"] = attn_implementation
    if is_bert:
        # A BERT-style encoder with today's parts (ModernBERT: pre-norm, rotary positions, GeGLU).
        # Measured on Shakespeare (4 layers, hidden 256, 1,000 steps of 32 x 64 tokens): eval loss
        # 4.21 and contextual fill-mask guesses, where the classic post-norm BERT of the same size
        # was still at 5.68, guessing punctuation, after 1,500 steps.
        common["intermediate_size"] = 2 * h
        config: PretrainedConfig = transformers.ModernBertConfig(
            **common,
            layer_types=["full_attention"] * n_layers,  # global attention in every layer, no sliding window
            cls_token_id=tokenizer.cls_token_id,
            sep_token_id=tokenizer.sep_token_id,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
        )
        classes: dict[ModelKind, type[PreTrainedModel]] = {
            "masked-lm": transformers.ModernBertForMaskedLM,
            "encoder": transformers.ModernBertModel,
            "classifier": transformers.ModernBertForSequenceClassification,
        }
    else:
        config = transformers.LlamaConfig(
            **common,
            num_key_value_heads=n_heads,
            tie_word_embeddings=True,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        classes = {
            "causal-lm": transformers.LlamaForCausalLM,
            "classifier": transformers.LlamaForSequenceClassification,
        }
    torch.manual_seed(int(opts["seed"]))
    model = classes[kind](config)
    return model, tokenizer, kind


def _cached_tokenizer(corpus: Corpus, kind: str, vocab_size: int, max_positions: int) -> PreTrainedTokenizerBase:
    """Train a tokenizer once per corpus and settings, then reuse it from the cache.

    The tokenizers library breaks ties between equally frequent merges differently from run
    to run, so training twice can give two vocabularies; the cache makes one corpus give one
    tokenizer, which a repeatable run needs (and saves the training time).
    """
    import hashlib

    from filelock import FileLock
    from transformers import AutoTokenizer

    from workbench import assets
    from workbench.data import train_tokenizer

    digest = hashlib.sha256(f"{kind}|{vocab_size}|{max_positions}|".encode())
    for text in corpus.texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    folder = assets.cache_dir() / "tokenizers" / digest.hexdigest()[:24]
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not (folder / "tokenizer.json").exists():
            trained = train_tokenizer(corpus, kind=kind, vocab_size=vocab_size, model_max_length=max_positions)
            tmp = folder.with_name(folder.name + ".partial")
            trained.save_pretrained(tmp)
            tmp.rename(folder)
        return AutoTokenizer.from_pretrained(folder)
