"""The tutorials and the README: every notebook opens the same way, every picture the README shows exists."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = [
    "00_quickstart",
    "01_pretrain_masked_lm",
    "02_pretrain_causal_lm",
    "03_finetune_classifier",
    "04_attention",
    "05_attributions",
    "06_probing_and_logit_lens",
    "07_watch_it_learn",
    "08_compression",
    "09_interventions",
    "10_tuned_lens_and_probes",
    "11_objectives_and_distillation",
]


def _headers():
    spec = importlib.util.spec_from_file_location("notebook_headers", ROOT / "tools" / "notebook_headers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tutorials_are_all_there():
    assert sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) == TUTORIALS


@pytest.mark.parametrize("name", TUTORIALS)
def test_every_tutorial_has_both_badges_the_colab_cell_and_the_quick_switch(name):
    assert _headers().check(ROOT / "notebooks" / f"{name}.ipynb") == []


@pytest.mark.parametrize("name", TUTORIALS)
def test_every_tutorials_first_cell_shows_offline(name):
    """Its badges are inline SVG: an image from the web shows as a broken image offline (and in CI)."""
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    first = nb["cells"][0]
    text = "".join(first["source"]) if isinstance(first["source"], list) else first["source"]
    assert "![" in text or "<img" in text, "the first cell shows the badges"
    assert not re.search(r"!\[[^\]]*\]\(\s*<?https?:|<img\b[^>]*\bsrc\s*=\s*[\"']?https?:", text, re.I)
    assert text.count("](data:image/svg+xml;base64,") == 2


def test_a_web_image_in_the_opening_is_caught(tmp_path):
    path = tmp_path / "99_web.ipynb"
    nb = json.loads((ROOT / "notebooks" / "00_quickstart.ipynb").read_text())
    nb["cells"][0]["source"] = "# Web\n\n![logo](https://example.org/logo.svg) <img src='http://example.org/x.png'>"
    path.write_text(json.dumps(nb))
    problems = _headers().check(path)
    assert any("https://example.org/logo.svg, http://example.org/x.png" in p for p in problems), problems


def test_a_notebook_without_the_opening_is_caught(tmp_path):
    bare = tmp_path / "99_bare.ipynb"
    bare.write_text(
        '{"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Bare"}, '
        '{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null, '
        '"source": "x = 1"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    )
    problems = _headers().check(bare)
    assert len(problems) == 3


def test_every_picture_the_readme_shows_exists_and_is_a_png():
    readme = (ROOT / "README.md").read_text()
    pictures = re.findall(r"!\[[^\]]*\]\((docs/images/[^)]+)\)", readme)
    assert len(pictures) >= 5, "the README tour shows a picture of each view"
    for picture in pictures:
        path = ROOT / picture
        assert path.is_file(), f"{picture} is referenced by the README but missing; run make pictures"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
