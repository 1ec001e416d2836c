"""The compression view's state, with no kernel and no browser."""

from __future__ import annotations

import json

import pytest

from workbench.compress import compare_models, prune
from workbench.ui import CompressionView

PAYLOAD = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def report(make_tiny):
    from tests.conftest import TINY_TEXTS
    from workbench.data import load_labelled

    clf = make_tiny("tiny-bert", kind="classifier", label_names=["animal", "other"])
    data = load_labelled([(t, "animal" if "cat" in t else "other") for t in TINY_TEXTS])
    texts = [f"The cat {PAYLOAD} sat on the mat.", "To be, or not to be."]
    return compare_models(clf, prune(clf, 0.5), eval_data=data, texts=texts, lengths=(8, 16), repeats=2)


def test_the_state_holds_the_deltas_the_drift_map_and_both_attribution_rows(report):
    view = CompressionView(report)
    state = view.report
    labels = [r["label"] for r in state["rows"]]
    assert labels == ["weights (MB)", "latency @8 tokens (ms)", "latency @16 tokens (ms)", "accuracy"]
    assert state["rows"][0]["compressed"] < state["rows"][0]["original"]
    assert len(state["drift"]) == 2 and len(state["drift"][0]) == 2 and state["drift_mean"] > 0
    assert state["method"] == "prune" and state["agreement"] is not None
    first = state["examples"][0]
    assert len(first["tokens"]) == len(first["original"]) == len(first["compressed"]) == len(first["features"])
    assert first["special"][0] and not first["features"][0]  # [CLS]: shown, not scored
    json.dumps(state)  # it travels as JSON: no numpy, no NaN


def test_the_standalone_page_carries_the_markup_as_data_only(report, tmp_path):
    page = CompressionView(report).to_html(tmp_path / "report.html")
    assert (tmp_path / "report.html").read_text() == page
    assert page.count("<script") == 1  # the markup rides inside the JSON state, as a string
    assert "onerror=alert(1)" in page


def test_anything_but_a_report_is_refused():
    with pytest.raises(TypeError, match="CompressionReport"):
        CompressionView({"original": "x"})
