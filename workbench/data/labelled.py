"""Labelled text for sequence classification: registry data sets, files, or (text, label) pairs.

Example::

    data = load_labelled("movie-snippets")          # labels: negative / positive
    train, validation = data.split(validation=0.1, seed=0)
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from workbench.errors import DataError

__all__ = ["LABELLED_DATASETS", "LabelledData", "load_labelled"]

LABELLED_DATASETS: dict[str, str] = {
    "movie-snippets": "10,568 movie-review sentences: negative / positive (crowd score's sign; 0 dropped)",
    "sms-spam": "4,837 SMS messages: ham / spam",
    "rotten-tomatoes": "4,866 Rotten Tomatoes review snippets: fresh / rotten (plot summaries dropped)",
}
TEXT_COLUMNS = ("text", "sentence", "review", "content")
LABEL_COLUMNS = ("label", "labels", "sentiment", "class", "category")
_FILE_KINDS = (".csv", ".tsv", ".jsonl")


@dataclass(frozen=True, repr=False)
class LabelledData:
    """Texts with integer labels; ``label_names[i]`` is what label ``i`` means."""

    name: str
    texts: list[str]
    labels: list[int]
    label_names: list[str]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise DataError(f"{len(self.texts)} texts but {len(self.labels)} labels; give one label per text.")
        bad = next((y for y in self.labels if not 0 <= y < len(self.label_names)), None)
        if bad is not None:
            raise DataError(
                f"Label {bad} is out of range for {len(self.label_names)} label names; "
                f"labels must be 0 to {len(self.label_names) - 1}."
            )

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        return f"LabelledData(name={self.name!r}, examples={len(self)}, label_names={self.label_names})"

    def class_counts(self) -> dict[str, int]:
        """Examples per class, as ``{label name: count}`` in label order."""
        counts = Counter(self.labels)
        return {name: counts[i] for i, name in enumerate(self.label_names)}

    def split(self, validation: float = 0.1, seed: int = 0) -> tuple[LabelledData, LabelledData]:
        """Split into (train, validation), keeping each class's share; the same seed gives the same split.

        Raises ``DataError`` when ``validation`` is not between 0 and 1, or the data are too few
        to hold any out.
        """
        if isinstance(validation, bool) or not isinstance(validation, (int, float)) or not 0 < validation < 1:
            raise DataError(f"validation must be a fraction between 0 and 1 (e.g. 0.1), not {validation!r}.")
        rng = random.Random(seed)
        held_out: list[int] = []
        for label in range(len(self.label_names)):
            members = [i for i, y in enumerate(self.labels) if y == label]
            rng.shuffle(members)
            take = round(len(members) * validation)
            if len(members) >= 2:  # every class with two examples shows up on both sides
                take = min(max(take, 1), len(members) - 1)
            held_out.extend(members[:take])
        if not held_out or len(held_out) == len(self):
            raise DataError(
                f"{len(self)} examples are too few to hold out a validation fraction of {validation}; "
                "give more examples or change the fraction."
            )
        validation_set = set(held_out)
        train = [i for i in range(len(self)) if i not in validation_set]
        return self._subset(train, "train"), self._subset(sorted(held_out), "validation")

    def _subset(self, indices: list[int], part: str) -> LabelledData:
        return LabelledData(
            name=f"{self.name}/{part}",
            texts=[self.texts[i] for i in indices],
            labels=[self.labels[i] for i in indices],
            label_names=list(self.label_names),
        )

    def to_dict(self) -> dict[str, Any]:
        """A summary: name, number of examples, label names and class counts."""
        return {
            "name": self.name,
            "examples": len(self),
            "label_names": list(self.label_names),
            "class_counts": self.class_counts(),
        }


def load_labelled(
    source: str | os.PathLike[str] | Sequence[tuple[str, str | int]],
    *,
    text_column: str | None = None,
    label_column: str | None = None,
) -> LabelledData:
    """Load labelled texts from a registry name, a .csv/.tsv/.jsonl file, or a list of (text, label) pairs.

    In files the text column is guessed from text/sentence/review/content and the label
    column from label/labels/sentiment/class/category unless named. Label names are sorted
    (numerically when they are all whole numbers). Returns ``LabelledData``. Raises
    ``DataError`` for an unknown name or file kind, a missing column, a text that is not a
    str, no examples, or a single class.
    """
    name, pairs = _read_source(source, text_column, label_column)
    if not pairs:
        raise DataError(f"The data set {name!r} holds no examples; give it at least two classes of labelled texts.")
    texts: list[str] = []
    for i, (text, _) in enumerate(pairs):
        if not isinstance(text, str):
            raise DataError(f"The text of example {i} is a {type(text).__name__}, not a str; every text must be a str.")
        texts.append(text)
    names = _sorted_label_names({label for _, label in pairs})
    if len(names) < 2:
        raise DataError(
            f"Every example in {name!r} has the label {names[0]!r}; a classifier needs at least two classes."
        )
    index = {label: i for i, label in enumerate(names)}
    return LabelledData(name=name, texts=texts, labels=[index[label] for _, label in pairs], label_names=names)


def _sorted_label_names(names: set[str]) -> list[str]:
    if all(_is_whole_number(n) for n in names):
        return sorted(names, key=int)
    return sorted(names)


def _is_whole_number(text: str) -> bool:
    return text.strip().lstrip("-").isdigit()


def _read_source(
    source: object, text_column: str | None, label_column: str | None
) -> tuple[str, Sequence[tuple[object, str]]]:
    """The data set's name and its (text, label) pairs; a text is checked to be a str by the caller."""
    if isinstance(source, (list, tuple)):
        return "examples", _read_pairs(source)
    if isinstance(source, str) and source in LABELLED_DATASETS:
        return source, _read_registered(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if path.is_file():
            return path.stem, _read_file(path, text_column, label_column)
        if path.is_dir():
            raise DataError(f"{str(path)!r} is a folder; pass one .csv, .tsv or .jsonl file inside it.")
        if isinstance(source, str) and "/" not in source and "\\" not in source and not path.suffix:
            known = ", ".join(sorted(LABELLED_DATASETS))
            raise DataError(
                f"Unknown data set {source!r}; the data sets I know are: {known} "
                "(or pass a path to a .csv, .tsv or .jsonl file, or a list of (text, label) pairs)."
            )
        raise DataError(f"The file {str(path)!r} does not exist; check the path, or pass a registry name.")
    raise DataError(
        f"Labelled data must come from a registry name, a file path or a list of (text, label) pairs, "
        f"not a {type(source).__name__}."
    )


def _read_pairs(items: Sequence[object]) -> list[tuple[object, str]]:
    pairs: list[tuple[object, str]] = []
    for i, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise DataError(f"Item {i} is {item!r}; every item must be a (text, label) pair.")
        text, label = item
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise DataError(f"The label of item {i} is {label!r}; labels must be str or int.")
        pairs.append((text, str(label)))
    return pairs


def _read_registered(name: str) -> list[tuple[str, str]]:
    from workbench import assets

    path = assets.fetch(name)
    if name == "movie-snippets":
        # Tab-separated, quotes are part of the text (''Conan''): no quoting at all.
        rows = _read_table(path, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [
            (r["text"], "positive" if float(r["sentiment"]) > 0 else "negative")
            for r in rows
            if float(r["sentiment"]) != 0
        ]
    rows = _read_table(path, delimiter=",", quoting=csv.QUOTE_MINIMAL)
    if name == "sms-spam":
        return [(r["text"], "spam" if r["spam"].strip() == "1" else "ham") for r in rows]
    return [(r["text"], r["category"]) for r in rows if r["category"] in ("fresh", "rotten")]


def _read_file(path: Path, text_column: str | None, label_column: str | None) -> list[tuple[object, str]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _read_table(path, delimiter=",", quoting=csv.QUOTE_MINIMAL)
    elif suffix == ".tsv":
        rows = _read_table(path, delimiter="\t", quoting=csv.QUOTE_NONE)
    elif suffix == ".jsonl":
        rows = _read_jsonl(path)
    else:
        raise DataError(f"Cannot read {path.name!r}: expected a file ending in {', '.join(_FILE_KINDS)}.")
    if not rows:
        raise DataError(f"{path.name!r} holds no rows; give it a header and at least two labelled rows.")
    columns = list(rows[0])
    text_key = _column(columns, text_column, TEXT_COLUMNS, "text", path)
    label_key = _column(columns, label_column, LABEL_COLUMNS, "label", path)
    pairs: list[tuple[object, str]] = []
    for i, row in enumerate(rows):
        text, label = row.get(text_key), row.get(label_key)
        if isinstance(text, str) and not text.strip():
            continue  # a blank line of text teaches nothing
        if label is None or (isinstance(label, str) and not label.strip()):
            raise DataError(f"Row {i + 1} of {path.name!r} has no {label_key!r}; give every row a label.")
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise DataError(
                f"Row {i + 1} of {path.name!r} has the label {label!r}; labels must be text or whole numbers."
            )
        pairs.append((text, str(label).strip()))
    return pairs


def _column(columns: list[str], wanted: str | None, guesses: tuple[str, ...], role: str, path: Path) -> str:
    if wanted is not None:
        if wanted in columns:
            return wanted
        raise DataError(f"{path.name!r} has no column {wanted!r}; its columns are: {', '.join(map(repr, columns))}.")
    by_lower = {c.strip().lower(): c for c in columns}
    for guess in guesses:
        if guess in by_lower:
            return by_lower[guess]
    raise DataError(
        f"{path.name!r} has no {role} column (looked for {', '.join(guesses)}); its columns are: "
        f"{', '.join(map(repr, columns)) or 'none'}; name it with {role}_column=."
    )


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _read_table(path: Path, *, delimiter: str, quoting: Literal[0, 1, 2, 3]) -> list[dict[str, Any]]:
    return list(csv.DictReader(io.StringIO(_decode(path), newline=""), delimiter=delimiter, quoting=quoting))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(_decode(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            message = f"Line {number} of {path.name!r} is not valid JSON ({error.msg}); fix or remove it."
            raise DataError(message) from None
        if not isinstance(row, dict):
            raise DataError(f"Line {number} of {path.name!r} is not a JSON object; write one object per line.")
        rows.append(row)
    return rows
