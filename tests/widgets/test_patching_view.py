"""The patching view's state, with no kernel and no browser: the map's buffer, the tokens, the clicks on heads.

Results are built directly from the ``PatchingResult`` dataclass (tokens from the tiny session models),
so these tests do not depend on the patching engine.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from workbench.errors import MemoryBudgetError, ProbeError
from workbench.explain.patching_result import PatchingResult
from workbench.explain.tokens import TokenInfo, text_tokens
from workbench.ui import patching_view
from workbench.ui.attention_view import AttentionView
from workbench.ui.patching_view import PatchingView, pack_values, unpack_values

PAYLOAD = "<img src=x onerror=alert(1)>"
CLEAN = f"the cat {PAYLOAD} sat on the mat"
CORRUPTED = f"the dog {PAYLOAD} sat on the mat"


def _position_map(bundle, clean: str = CLEAN, corrupted: str | None = CORRUPTED, **fields) -> PatchingResult:
    clean_tokens = text_tokens(bundle, clean)
    n = len(clean_tokens.text)
    corrupted_tokens = text_tokens(bundle, corrupted) if corrupted is not None else None
    differing = [i for i in range(n) if corrupted_tokens and clean_tokens.ids[i] != corrupted_tokens.ids[i]]
    values = np.linspace(-0.5, 1.25, 2 * n, dtype=np.float32).reshape(2, n)  # (layers, positions)
    options = {
        "model": bundle.name,
        "method": "patching",
        "kind": "resid_post",
        "metric": "logit_diff(' mat', ' dog')",
        "clean": clean,
        "clean_tokens": clean_tokens,
        "values": values,
        "layers": [0, 1],
        "columns": list(range(n)),
        "clean_metric": 3.0,
        "corrupted_metric": -1.0,
        "corrupted": corrupted,
        "corrupted_tokens": corrupted_tokens,
        "differing": differing,
        **fields,
    }
    return PatchingResult(**options)


def _head_map(bundle, **fields) -> PatchingResult:
    values = np.array([[0.1, -0.8], [0.4, 0.0]], dtype=np.float32)  # (layers, heads)
    return _position_map(bundle, values=values, kind="head", columns=[0, 1], method="ablation", **fields)


@pytest.fixture(scope="module")
def position_map(tiny_gpt) -> PatchingResult:
    return _position_map(tiny_gpt)


@pytest.fixture(scope="module")
def head_map(tiny_gpt) -> PatchingResult:
    return _head_map(tiny_gpt, corrupted=None, corrupted_tokens=None, differing=[])


def test_the_values_travel_as_one_float32_buffer_that_decodes_to_the_results_values(position_map):
    view = PatchingView(position_map)
    rows, columns = position_map.values.shape
    assert isinstance(view.values, bytes) and len(view.values) == rows * columns * 4
    np.testing.assert_array_equal(unpack_values(view.values, rows, columns), position_map.values)
    assert view.meta["rows"] == 2 and view.meta["columns"] == columns and view.meta["layers"] == [0, 1]
    assert view.meta["extent"] == pytest.approx(1.25)  # symmetric scale: the largest magnitude either side
    assert "values" not in view.meta and all(not isinstance(v, list) or len(v) < 50 for v in view.meta.values())


def test_the_scale_is_centred_at_zero_and_reaches_the_larger_side(tiny_gpt):
    mostly_negative = _position_map(tiny_gpt)
    mostly_negative.values = mostly_negative.values - 2.0  # -2.5 .. -0.75
    mostly_negative.values[0, 1] = np.nan  # a missing value neither breaks nor sets the scale
    view = PatchingView(mostly_negative)
    assert view.meta["extent"] == pytest.approx(2.5)
    assert np.isnan(unpack_values(view.values, *mostly_negative.values.shape)[0, 1])


def test_tokens_travel_as_raw_text_and_a_markup_token_stays_text(position_map, tmp_path):
    view = PatchingView(position_map)
    clean = view.meta["clean"]
    assert clean["tokens"] == position_map.clean_tokens.text and "<" in clean["tokens"]
    assert view.meta["corrupted"]["tokens"] == position_map.corrupted_tokens.text
    page = view.to_html(tmp_path / "patching.html")
    assert page.count("</script>") == 1 and "<img" not in page  # inlined escaped: no markup in the page
    assert (tmp_path / "patching.html").read_text(encoding="utf-8") == page


def test_the_differing_tokens_are_marked_on_both_texts_and_the_metric_travels(position_map):
    view = PatchingView(position_map)
    cat = position_map.clean_tokens.text.index(" cat")
    assert position_map.differing == [cat] and position_map.corrupted_tokens.text[cat] == " dog"
    assert view.meta["clean"]["marked"] == [cat] and view.meta["corrupted"]["marked"] == [cat]
    assert view.meta["metric"] == "logit_diff(' mat', ' dog')"
    assert (view.meta["clean_metric"], view.meta["corrupted_metric"]) == (3.0, -1.0)
    assert view.meta["read_position"] == len(position_map.clean_tokens.text) - 1  # -1: the last token
    assert view.meta["site_names"] == [["resid_post.0"], ["resid_post.1"]]


def test_rows_are_labelled_by_layer_and_an_embed_maps_one_row_as_the_embeddings(position_map, tiny_gpt):
    assert PatchingView(position_map).meta["row_labels"] == ["L0", "L1"]
    embed = _position_map(tiny_gpt, kind="embed", layers=[0], values=position_map.values[:1])
    meta = PatchingView(embed).meta
    assert meta["row_labels"] == ["embed"] and meta["layers"] == [0] and meta["site_names"] == [["embed"]]


def test_causal_tracing_marks_the_subject_as_noised_and_shows_r_and_the_note(tiny_gpt):
    traced = _position_map(
        tiny_gpt,
        corrupted=CLEAN,  # as the engine keeps it: the clean tokens, whose subject gets the noise
        method="causal_tracing",
        subject=[1, 2],
        samples=10,
        pearson_r=0.875,
        note="Averaged over 10 noise draws.",
    )
    meta = PatchingView(traced).meta
    assert meta["clean"]["marked"] == [1, 2] and meta["corrupted"] is None
    assert meta["samples"] == 10 and meta["pearson_r"] == 0.875 and meta["note"] == "Averaged over 10 noise draws."
    assert meta["title"] == "Causal tracing of resid_post: tiny-gpt"


def test_a_head_map_names_each_head_and_opens_heads_only_with_a_bundle(head_map, tiny_gpt):
    view = PatchingView(head_map)
    assert view.meta["by_head"] and view.meta["site_names"] == [["head.0.0", "head.0.1"], ["head.1.0", "head.1.1"]]
    assert not view.meta["can_open"] and PatchingView(head_map, tiny_gpt).meta["can_open"]
    assert view.meta["title"] == "Head ablation: tiny-gpt"


def test_a_click_on_a_head_with_the_bundle_opens_it_in_the_attention_view_computed_once(
    head_map, tiny_gpt, monkeypatch
):
    calls = []
    real = patching_view.attention
    monkeypatch.setattr(patching_view, "attention", lambda bundle, text: calls.append(text) or real(bundle, text))
    view = PatchingView(head_map, bundle=tiny_gpt)
    assert view.attention is None and view.opened == {}
    view._on_message(view, {"open": "head", "layer": 1, "head": 0}, [])
    opened = view.attention
    assert isinstance(opened, AttentionView) and opened.selected == {"layer": 1, "head": 0}
    assert opened.head_key == "1:0" and opened.mode == "head" and opened.result.text == head_map.clean
    assert view.opened == {"layer": 1, "head": 0} and "1.0" in view.message
    view._on_message(view, {"open": "head", "layer": 0, "head": 1}, [])
    assert view.attention is opened and opened.selected == {"layer": 0, "head": 1} and opened.head_key == "0:1"
    assert calls == [head_map.clean]  # the engine ran once for both clicks
    state = view.get_state(["attention"])
    assert state["attention"] == f"anywidget:{opened.model_id}"  # the browser renders the child by this ref


def test_without_a_bundle_a_click_on_a_head_says_to_pass_one(head_map):
    view = PatchingView(head_map)
    view._on_message(view, {"open": "head", "layer": 1, "head": 1}, [])
    assert view.attention is None and "bundle=" in view.message and view.message.endswith(".")


def test_a_click_that_names_no_head_of_the_map_opens_nothing(head_map, position_map, tiny_gpt):
    view = PatchingView(head_map, tiny_gpt)
    for bad in ({"open": "head", "layer": 7, "head": 0}, {"open": "head", "layer": True, "head": 0}):
        view._on_message(view, bad, [])
        assert view.attention is None and "not in this map" in view.message
    view._on_message(view, {"something": "else"}, [])
    positions = PatchingView(position_map, tiny_gpt)
    positions._on_message(positions, {"open": "head", "layer": 0, "head": 0}, [])
    assert positions.attention is None and "token positions" in positions.message


def test_the_view_refuses_anything_but_a_result_and_a_bundle_of_another_model(position_map, tiny_gpt, tiny_bert):
    for wrong in ("not a result", None, position_map.to_dict()):
        with pytest.raises(TypeError, match="PatchingView takes a PatchingResult"):
            PatchingView(wrong)
    with pytest.raises(TypeError, match="takes the ModelBundle"):
        PatchingView(position_map, bundle="tiny-gpt")
    with pytest.raises(ProbeError, match=r"^This map is of tiny-gpt but bundle= is tiny-bert; [^\n]*\.$"):
        PatchingView(position_map, bundle=tiny_bert)


def test_the_export_holds_the_same_values_and_cannot_open_heads(head_map, tiny_gpt):
    view = PatchingView(head_map, tiny_gpt)
    body = view.to_html().split('<script type="module">', 1)[1]
    state = json.loads(next(line for line in body.splitlines() if line.startswith("const state = "))[14:-1])
    binary = json.loads(next(line for line in body.splitlines() if line.startswith("const binary = "))[15:-1])
    assert state["meta"]["standalone"] and not state["meta"]["can_open"] and state["attention"] is None
    np.testing.assert_array_equal(unpack_values(base64.b64decode(binary["values"]), 2, 2), head_map.values)


def test_the_export_checks_the_memory_budget_before_building_the_page():
    n = 20_000
    tokens = TokenInfo(["a"] * n, [False] * n, [False] * n, [False] * n, list(range(n)), [0] * n)
    big = PatchingResult(
        "m", "patching", "resid_post", "p('a')", "a " * n, tokens, np.ones((32, n), np.float32),
        list(range(32)), list(range(n)), 1.0, 0.0,
    )  # fmt: skip
    with pytest.raises(MemoryBudgetError, match="standalone page of the patching view"):
        PatchingView(big).to_html(memory_mb=2)


def test_packed_values_round_trip_exactly():
    values = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    assert len(pack_values(values)) == 60
    np.testing.assert_array_equal(unpack_values(pack_values(values), 3, 5), values)


def test_the_engines_head_ablation_map_opens_its_heads(tiny_gpt):
    from workbench.explain.ablation import ablate_each_head

    result = ablate_each_head(tiny_gpt, "The cat sat on the", target=" mat")
    view = PatchingView(result, tiny_gpt)
    assert view.meta["by_head"] and view.meta["can_open"] and view.meta["site_names"][1] == ["head.1.0", "head.1.1"]
    np.testing.assert_array_equal(unpack_values(view.values, 2, 2), result.values)
    view.open_head(1, 1)
    assert view.attention.selected == {"layer": 1, "head": 1} and view.attention.result.text == "The cat sat on the"
