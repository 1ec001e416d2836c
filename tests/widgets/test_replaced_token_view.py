"""The replaced-token view's state, with no kernel and no browser: the probe's numbers, tokens as text."""

from __future__ import annotations

import json

import pytest

from workbench.explain.replaced_tokens import replaced_tokens
from workbench.models.objective_heads import make_head
from workbench.ui.replaced_token_view import ReplacedTokenView

PAYLOAD = "<img src=x onerror=alert(1)></script>"


@pytest.fixture(scope="module")
def results(make_tiny):
    bundle = make_tiny("tiny-bert", kind="encoder")
    bundle.heads = {"replaced-token": make_head("replaced-token", bundle.config.hidden_size)}
    return [replaced_tokens(bundle, f"the cat {PAYLOAD} sat"), replaced_tokens(bundle, "the dog ran")]


def test_each_row_holds_its_results_probabilities_and_tokens(results):
    view = ReplacedTokenView(results)
    assert view.texts == [r.text for r in results]
    for index, (row, result) in enumerate(zip(view.rows, results, strict=True)):
        assert row["text"] == index
        assert row["tokens"] == result.tokens.text
        assert row["scores"] == [round(float(p), 6) for p in result.probabilities]
        assert row["special"] == result.tokens.special
        assert row["features"] == [not s for s in result.tokens.special]
        assert row["spaces"] == result.space_after
        real = [p for p, s in zip(result.probabilities, result.tokens.special, strict=True) if not s]
        assert row["score"] == pytest.approx(max(real), abs=1e-6)
    json.dumps(view.get_state(["rows", "texts"]))


def test_token_strings_travel_as_text_and_the_page_cannot_be_closed_by_them(results, tmp_path):
    view = ReplacedTokenView(results)
    assert any("<" in t for t in view.rows[0]["tokens"])  # raw text: the widget sets it with textContent
    page = view.to_html(tmp_path / "replaced.html")
    assert "</script><script>" not in page and page.count("</script>") == 1
    assert (tmp_path / "replaced.html").read_text(encoding="utf-8") == page


def test_the_view_takes_one_result_or_a_list_and_refuses_anything_else(results):
    assert len(ReplacedTokenView(results[0]).rows) == 1
    with pytest.raises(TypeError, match="ReplacedTokenResult"):
        ReplacedTokenView([])
    with pytest.raises(TypeError, match="ReplacedTokenResult"):
        ReplacedTokenView(["not a result"])
