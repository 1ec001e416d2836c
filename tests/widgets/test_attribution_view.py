"""The attribution view's state, with no kernel and no browser."""

from __future__ import annotations

import json

import pytest

from workbench.explain import attribute_many
from workbench.ui import AttributionView

PAYLOAD = "<img src=x onerror=alert(1)></script>"


@pytest.fixture(scope="module")
def results(tiny_classifier):
    texts = [f"the cat {PAYLOAD} sat", "the dog ran"]
    by_label = [
        attribute_many(tiny_classifier, texts, target, method=["occlusion", "gradient_x_input"], progress=False)
        for target in ("negative", "positive")
    ]
    return by_label[0] + by_label[1]


def test_the_view_holds_a_row_per_result_with_its_text_target_and_faithfulness(results):
    view = AttributionView(results)
    assert len(view.rows) == 8 and view.texts == [results[0].text, "the dog ran"]
    first = view.rows[0]
    assert first["method"] == "occlusion" and first["target_name"] == "negative" and first["text"] == 0
    assert len(first["tokens"]) == len(first["scores"]) == len(first["features"]) == len(first["spaces"])
    assert set(first["faithfulness"]) == {"comprehensiveness", "sufficiency", "deletion_auc"}
    assert view.target == "negative"
    json.dumps(view.get_state(["rows", "texts"]))


def test_token_strings_travel_as_data_and_the_page_cannot_be_closed_by_them(results, tmp_path):
    view = AttributionView(results)
    assert any("<" in t for t in view.rows[0]["tokens"])  # raw text: the view sets it with textContent
    page = view.to_html(tmp_path / "attributions.html")
    assert "</script><script>" not in page and page.count("</script>") == 1
    assert (tmp_path / "attributions.html").read_text(encoding="utf-8") == page


def test_the_view_takes_one_result_or_a_list_and_refuses_anything_else(results):
    assert len(AttributionView(results[0]).rows) == 1
    with pytest.raises(TypeError, match="AttributionResult"):
        AttributionView([])
    with pytest.raises(TypeError, match="AttributionResult"):
        AttributionView(["not a result"])
