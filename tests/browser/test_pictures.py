"""``make pictures`` makes every picture the README shows: each is a tagged tutorial output or a benchmark's.

No browser here (the folder marks it ``browser``; it starts nothing): the tags are read from the
tutorials as ``tests/browser/pictures.py`` reads them. That the tagged output of a notebook open in
JupyterLab is saved as a picture is checked in ``test_figures_browser.py`` on its figures notebook.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pictures import OTHER_SOURCES, README, TUTORIALS, readme_pictures, tagged_pictures, tutorial_pictures


def test_every_picture_the_readme_shows_has_a_source() -> None:
    shown = readme_pictures()
    assert shown, f"{README} shows no docs/images/*.png: the pattern in pictures.py no longer matches it"
    made = set(tutorial_pictures()) | set(OTHER_SOURCES)
    missing = [name for name in shown if name not in made]
    assert not missing, (
        f"the README shows {', '.join(f'docs/images/{n}.png' for n in missing)} but nothing makes them: tag the "
        "tutorial cell whose output it is with 'picture:<name>' (cell metadata tags), or name its maker in "
        "pictures.OTHER_SOURCES"
    )


def test_every_picture_made_is_shown_by_the_readme() -> None:
    unused = sorted(set(tutorial_pictures()) - set(readme_pictures()))
    assert not unused, f"tutorial cells are tagged for pictures the README never shows: {', '.join(unused)}"


def test_the_benchmark_named_for_a_picture_exists() -> None:
    for name, command in OTHER_SOURCES.items():
        script = next(word for word in command.split() if word.endswith(".py"))
        assert (TUTORIALS.parent / script).is_file(), f"{name}.png is made by {script}, which is missing"


def _notebook(tmp_path: Path, tags: list[list[str]], kinds: list[str] | None = None) -> Path:
    kinds = kinds or ["code"] * len(tags)
    cells = [
        {"cell_type": kind, "metadata": {"tags": cell_tags}, "source": ""}
        for kind, cell_tags in zip(kinds, tags, strict=True)
    ]
    path = tmp_path / "tutorial.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_tags_name_a_picture_and_optionally_an_output(tmp_path: Path) -> None:
    path = _notebook(tmp_path, [[], ["picture:attention", "slow"], ["picture:dashboard@2"]])
    found = [(p.name, p.cell, p.output) for p in tagged_pictures(path)]
    assert found == [("attention", 1, None), ("dashboard", 2, 2)]


@pytest.mark.parametrize("tag", ["picture:", "picture:two words", "picture:x@last"])
def test_a_malformed_picture_tag_is_an_error(tmp_path: Path, tag: str) -> None:
    with pytest.raises(ValueError, match="must be 'picture:<name>'"):
        tagged_pictures(_notebook(tmp_path, [[tag]]))


def test_a_picture_tag_on_a_markdown_cell_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="on a code cell"):
        tagged_pictures(_notebook(tmp_path, [["picture:intro"]], kinds=["markdown"]))
