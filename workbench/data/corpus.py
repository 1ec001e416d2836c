"""Plain-text corpora for pretraining: a registry name, a file, a folder, or a list of strings.

Example::

    corpus = load_corpus("shakespeare", max_chars=1_000_000)
    corpus.to_dict()   # {'name': 'shakespeare', 'documents': ..., 'characters': 1000000}
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import DataError

__all__ = ["CORPORA", "Corpus", "load_corpus"]

CORPORA: dict[str, str] = {
    "shakespeare": "Shakespeare's plays and poems (one Gutenberg edition of each work)",
    "rotten-tomatoes": "Rotten Tomatoes review snippets and plot summaries (the text column)",
}

# Project Gutenberg wraps each book in a licence; these lines mark where the book itself
# starts and ends. The first group covers the modern "*** START OF ..." form, the second
# the older "*END*THE SMALL PRINT!" form.
_GUTENBERG_START = re.compile(
    r"^\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG.*$|^\*END\*THE SMALL PRINT.*$",
    re.IGNORECASE | re.MULTILINE,
)
_GUTENBERG_END = re.compile(
    r"^\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG.*$|^End of (the )?Project Gutenberg.*$",
    re.IGNORECASE | re.MULTILINE,
)
_BLANK_LINES = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True, repr=False)
class Corpus:
    """A named list of documents (paragraphs for long files), ready for tokenizer training."""

    name: str
    texts: list[str]

    @property
    def num_chars(self) -> int:
        """Characters in all documents together."""
        return sum(len(text) for text in self.texts)

    def __len__(self) -> int:
        return len(self.texts)

    def __iter__(self) -> Iterator[str]:
        return iter(self.texts)

    def __repr__(self) -> str:  # the texts can be millions of characters: never print them
        return f"Corpus(name={self.name!r}, documents={len(self)}, characters={self.num_chars})"

    def to_dict(self) -> dict[str, Any]:
        """A summary: name, number of documents, number of characters."""
        return {"name": self.name, "documents": len(self), "characters": self.num_chars}


def load_corpus(source: Corpus | str | os.PathLike[str] | Sequence[str], *, max_chars: int | None = None) -> Corpus:
    """Load a corpus from a registry name, a .txt file, a folder of .txt files or a list of str (or a ``Corpus``).

    Files are split into paragraphs on blank lines, and Project Gutenberg licence text is
    dropped. ``max_chars`` keeps only the first that many characters (for quick runs).
    Returns a ``Corpus``. Raises ``DataError`` for an unknown name, a missing path, a folder
    with no .txt files, a list holding something other than str, or a corpus with no text.
    """
    if max_chars is not None and (isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1):
        raise DataError(f"max_chars must be a positive whole number or None, not {max_chars!r}.")
    name, texts = _read_source(source)
    texts = [text for text in texts if text.strip()]
    if not texts:
        raise DataError(
            f"The corpus {name!r} holds no text (every document is empty or whitespace); "
            "give it at least one document with words in it."
        )
    if max_chars is not None:
        texts = _truncate(texts, max_chars)
    return Corpus(name=name, texts=texts)


def _read_source(source: object) -> tuple[str, list[str]]:
    if isinstance(source, Corpus):
        return source.name, list(source.texts)
    if isinstance(source, (list, tuple)):
        for i, item in enumerate(source):
            if not isinstance(item, str):
                raise DataError(
                    f"Item {i} of the list is a {type(item).__name__}, not a str; "
                    "a corpus list must hold only strings of text."
                )
        return "texts", list(source)
    if isinstance(source, str) and source in CORPORA:
        return source, _read_registered(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if path.is_dir():
            return path.name or str(path), _read_folder(path)
        if path.is_file():
            return path.stem, _paragraphs(_read_text_file(path))
        if isinstance(source, str) and _looks_like_a_name(source):
            known = ", ".join(sorted(CORPORA))
            raise DataError(
                f"Unknown corpus {source!r}; the corpora I know are: {known} "
                "(or pass a path to a .txt file or folder, or a list of strings)."
            )
        raise DataError(f"The path {str(path)!r} does not exist; check the spelling, or pass a registry name.")
    raise DataError(f"A corpus source must be a registry name, a path or a list of str, not a {type(source).__name__}.")


def _looks_like_a_name(source: str) -> bool:
    return "/" not in source and "\\" not in source and not Path(source).suffix


def _read_registered(name: str) -> list[str]:
    from workbench import assets

    location = assets.fetch(name)
    if name == "shakespeare":
        # `_gut.txt` is one edition of each work; `_gut_f.txt` repeats many as the Folio.
        files = sorted(location.glob("*_gut.txt"))
        return [paragraph for file in files for paragraph in _paragraphs(_read_text_file(file))]
    with open(location, encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f)
        return [paragraph for row in rows for paragraph in _paragraphs(row["text"] or "")]


def _read_folder(folder: Path) -> list[str]:
    files = sorted(p for p in folder.rglob("*.txt") if p.is_file())
    if not files:
        raise DataError(f"The folder {str(folder)!r} holds no .txt files; put plain-text files ending in .txt there.")
    return [paragraph for file in files for paragraph in _paragraphs(_read_text_file(file))]


def _read_text_file(path: Path) -> str:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # every byte is a character: reading never fails
    return _strip_gutenberg(text.replace("\r\n", "\n").replace("\r", "\n"))


def _strip_gutenberg(text: str) -> str:
    """The book without Project Gutenberg's header and licence, when their markers are there."""
    start = _GUTENBERG_START.search(text)
    if start:
        text = text[start.end() :]
    end = _GUTENBERG_END.search(text)
    if end:
        text = text[: end.start()]
    return text


def _paragraphs(text: str) -> list[str]:
    """Paragraphs split on blank lines, stripped, empty ones dropped."""
    text = text.replace("\r\n", "\n")
    return [part.strip() for part in _BLANK_LINES.split(text) if part.strip()]


def _truncate(texts: list[str], max_chars: int) -> list[str]:
    kept: list[str] = []
    left = max_chars
    for text in texts:
        if left <= 0:
            break
        kept.append(text[:left])
        left -= len(kept[-1])
    return kept
