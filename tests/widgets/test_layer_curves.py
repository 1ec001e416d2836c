"""The layer-curves view's state, with no kernel and no browser: the payload holds the result's arrays,
the caption counts from the data, labels stay text, the export is offline, bad input is one sentence.

Results are built directly from their dataclasses with numpy arrays, so these tests do not run a model.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from workbench.explain.lens_quality import LensQualityResult
from workbench.explain.probing_result import ProbeLayersResult
from workbench.ui.layer_curves import LayerCurves, curves_payload

PAYLOAD = "<img src=x onerror=alert(1)>"
ROWS = ["embeddings", "layer 1", "layer 2", "layer 3", "layer 4"]


def _lens(**fields) -> LensQualityResult:
    options = {
        "model": "tiny-gpt",
        "lens": "tuned lens (step 200)",
        "layer_names": list(ROWS),
        "kl_logit": np.array([4.0, 3.0, 2.0, 1.0, 0.0], dtype=np.float32),
        "kl_tuned": np.array([1.5, 3.5, 0.75, 0.25, 0.0], dtype=np.float32),  # lower at 3 of 4 (the last excluded)
        "perplexity_logit": np.array([900.0, 300.0, 80.0, 30.0, 12.0], dtype=np.float32),
        "perplexity_tuned": np.array([120.0, 400.0, 40.0, 20.0, 12.0], dtype=np.float32),
        "positions": 640,
        "texts": 20,
        **fields,
    }
    return LensQualityResult(**options)


def _probe(count: int = 1, **fields) -> ProbeLayersResult:
    rng = np.random.default_rng(0)
    shape = (count, len(ROWS))  # (checkpoints, rows)
    options = {
        "model": "minilm",
        "data": "movie-snippets",
        "pooling": "mean",
        "control": "shuffle",
        "layer_names": list(ROWS),
        "checkpoints": [f"step {50 * (i + 1)}" for i in range(count)] if count > 1 else ["minilm"],
        "accuracy": rng.uniform(0.6, 0.95, shape),
        "control_accuracy": rng.uniform(0.45, 0.6, shape),
        "majority": 0.52,
        "train_examples": 300,
        "test_examples": 100,
        "label_names": ["negative", "positive"],
        **fields,
    }
    return ProbeLayersResult(**options)


def _series(section: dict, role: str) -> list[dict]:
    return [s for panel in section["panels"] for s in panel["series"] if s["role"] == role]


def test_the_lens_payload_holds_the_results_arrays_row_by_row():
    result = _lens()
    section = LayerCurves(result).meta["sections"][0]
    assert section["rows"] == ROWS
    kl, perplexity = section["panels"]
    assert [kl["key"], perplexity["key"]] == ["kl", "perplexity"]
    assert [s["label"] for s in kl["series"]] == ["logit lens", "tuned lens (step 200)"]
    np.testing.assert_array_equal(kl["series"][0]["values"], result.kl_logit)
    np.testing.assert_array_equal(kl["series"][1]["values"], result.kl_tuned)
    np.testing.assert_array_equal(perplexity["series"][0]["values"], result.perplexity_logit)
    np.testing.assert_array_equal(perplexity["series"][1]["values"], result.perplexity_tuned)


def test_the_caption_counts_the_rows_where_the_tuned_lens_is_closer_from_the_data():
    assert LayerCurves(_lens()).meta["sections"][0]["caption"] == "tuned lens lower KL at 3 of 4 layers"
    everywhere = _lens(kl_tuned=np.array([0.5, 0.5, 0.5, 0.5, 0.0]))
    assert LayerCurves(everywhere).meta["sections"][0]["caption"] == "tuned lens lower KL at 4 of 4 layers"
    nowhere = _lens(kl_tuned=np.array([9.0, 9.0, 9.0, 9.0, 0.0]))
    assert LayerCurves(nowhere).meta["sections"][0]["caption"] == "tuned lens lower KL at 0 of 4 layers"


def test_a_lens_result_without_a_tuned_lens_draws_the_logit_lens_alone_and_says_so():
    meta = LayerCurves(_lens(lens="", kl_tuned=None, perplexity_tuned=None)).meta
    section = meta["sections"][0]
    assert [len(p["series"]) for p in section["panels"]] == [1, 1]
    assert section["caption"].startswith("logit lens only") and "lens=" in section["caption"]


def test_the_probe_payload_holds_accuracy_control_selectivity_and_the_majority_baseline():
    result = _probe()
    section = LayerCurves(result).meta["sections"][0]
    (panel,) = section["panels"]
    (accuracy,) = _series(section, "accuracy")
    (control,) = _series(section, "control")
    (selectivity,) = _series(section, "selectivity")
    np.testing.assert_array_equal(accuracy["values"], result.accuracy[0])
    np.testing.assert_array_equal(control["values"], result.control_accuracy[0])
    np.testing.assert_array_equal(selectivity["values"], result.accuracy[0] - result.control_accuracy[0])
    assert not selectivity["drawn"] and accuracy["drawn"] and control["drawn"]
    assert panel["baselines"] == [{"label": "majority class", "value": 0.52}] and panel["range"] == [0.0, 1.0]
    best = int(np.argmax(result.accuracy[0]))
    assert section["caption"].startswith(f"best layer: {ROWS[best]} (accuracy {result.accuracy[0, best]:.3f}")


def test_several_checkpoints_give_one_accuracy_line_each_the_oldest_lightest():
    result = _probe(count=3)
    section = LayerCurves(result).meta["sections"][0]
    accuracy = _series(section, "accuracy")
    assert [s["label"] for s in accuracy] == ["accuracy · step 50", "accuracy · step 100", "accuracy · step 150"]
    assert accuracy[0]["shade"] < accuracy[1]["shade"] < accuracy[2]["shade"] == 1.0
    for i, line in enumerate(accuracy):
        assert line["checkpoint"] == i
        np.testing.assert_array_equal(line["values"], result.accuracy[i])
    assert [s["checkpoint"] for s in _series(section, "control")] == [0, 1, 2]
    np.testing.assert_array_equal(_series(section, "control")[1]["values"], result.control_accuracy[1])
    assert section["checkpoints"] == ["step 50", "step 100", "step 150"]


def test_a_list_of_results_of_one_kind_draws_a_section_each():
    meta = LayerCurves([_probe(pooling="cls"), _probe(pooling="mean")]).meta
    assert [s["title"] for s in meta["sections"]] == [
        "Probe accuracy: minilm on movie-snippets (cls pooling)",
        "Probe accuracy: minilm on movie-snippets (mean pooling)",
    ]
    assert meta["kind"] == "probe" and meta["title"] == "2 results, layer by layer"


def test_missing_values_travel_as_null_and_the_payload_is_json():
    kl = np.array([4.0, np.nan, 2.0, np.inf, 0.0])
    meta = LayerCurves(_lens(kl_logit=kl)).meta
    assert meta["sections"][0]["panels"][0]["series"][0]["values"] == [4.0, None, 2.0, None, 0.0]
    assert json.loads(json.dumps(meta, allow_nan=False)) == meta


def test_hostile_labels_travel_as_raw_text_and_the_export_holds_no_markup(tmp_path):
    rows = ["embeddings", PAYLOAD, "layer 2", "layer 3", "layer 4"]
    view = LayerCurves(_probe(layer_names=rows, checkpoints=[PAYLOAD], label_names=[PAYLOAD, "b"]))
    section = view.meta["sections"][0]
    assert section["rows"][1] == PAYLOAD and PAYLOAD in section["info"]
    page = view.to_html(tmp_path / "curves.html")
    assert "<img" not in page and page.count("</script>") == 1
    assert (tmp_path / "curves.html").read_text(encoding="utf-8") == page


def test_the_export_is_self_contained_and_holds_the_same_payload():
    view = LayerCurves(_lens(), log_scale=False)
    page = view.to_html()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    body = page.split('<script type="module">', 1)[1]
    state = json.loads(next(line for line in body.splitlines() if line.startswith("const state = "))[14:-1])
    assert state["meta"]["standalone"] and state["log_scale"] is False
    assert state["meta"]["sections"] == view.meta["sections"]


@pytest.mark.parametrize("wrong", ["not a result", None, 3.5, {"kl_logit": [1.0]}, [1, 2]])
def test_anything_but_a_lens_or_probe_result_is_refused_in_one_sentence(wrong):
    with pytest.raises(TypeError, match=r"^LayerCurves takes a LensQualityResult [^\n]*, got \w+\.$"):
        LayerCurves(wrong)


def test_results_of_two_kinds_in_one_list_are_refused_in_one_sentence():
    with pytest.raises(TypeError, match=r"^LayerCurves draws results of one kind, got [^\n]*; make one view for each"):
        LayerCurves([_lens(), _probe()])


def test_an_empty_list_is_refused_in_one_sentence():
    with pytest.raises(ValueError, match=r"^LayerCurves got an empty list; [^\n]*\.$"):
        LayerCurves([])


def test_arrays_that_do_not_match_the_layer_rows_are_refused_in_one_sentence():
    with pytest.raises(ValueError, match=r"^The LensQualityResult's kl_tuned has shape \(3,\) [^\n]*\.$"):
        curves_payload(_lens(kl_tuned=np.ones(3)))
    with pytest.raises(ValueError, match=r"^The ProbeLayersResult's accuracy has shape \(5,\) [^\n]*\.$"):
        curves_payload(_probe(accuracy=np.ones(5)))


def test_the_engines_lens_quality_draws_and_an_identity_lens_is_lower_nowhere(tiny_gpt, tiny_texts):
    from workbench.explain.tuned_lens import TunedLens, lens_quality

    result = lens_quality(tiny_gpt, tiny_texts[:3], TunedLens.for_model(tiny_gpt))
    section = LayerCurves(result).meta["sections"][0]
    kl_logit, kl_tuned = section["panels"][0]["series"]
    np.testing.assert_array_equal(kl_logit["values"], result.kl_logit)
    np.testing.assert_array_equal(kl_tuned["values"], result.kl_tuned)
    assert kl_tuned["label"] == "tuned lens (untrained)" and section["rows"] == ["embeddings", "layer 1", "layer 2"]
    assert section["caption"] == "tuned lens lower KL at 0 of 2 layers"  # the identity lens is the logit lens
