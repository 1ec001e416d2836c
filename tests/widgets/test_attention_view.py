"""The attention view's state and payloads, with no kernel and no browser.

Short texts send the opened head whole, as before. Long ones (4,096 tokens of a tiny causal model
that keeps no full maps) send only what the browser asks for: the rows in sight (``window``), the
opened head pooled, and a zoomed region at full resolution (``zoom``).
"""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from workbench.errors import MemoryBudgetError, ProbeError
from workbench.explain import attention, attention_rollout
from workbench.explain.attention import AttentionResult
from workbench.explain.tokens import TokenInfo
from workbench.ui import AttentionView, to_bertviz
from workbench.ui.attention_view import MAX_WINDOW_ROWS, WINDOW_ROWS, ZOOM_CELLS, pack_matrix, thumbnails, unpack_matrix

LONG_TOKENS = 4096


@pytest.fixture(scope="module")
def result(tiny_bert):
    return attention(tiny_bert, "the cat sat on the <img src=x onerror=alert(1)> mat")


@pytest.fixture(scope="module")
def long_result(make_tiny):
    bundle = make_tiny("tiny-gpt", max_positions=LONG_TOKENS)
    text = "The cat sat on the mat and looked at the dog. " * 400  # cut to the model's 4,096 tokens
    out = attention(bundle, text, keep_weights=False)
    assert out.num_tokens == LONG_TOKENS and out.full_weights is None
    return out


@pytest.fixture
def long_view(long_result):
    return AttentionView(long_result)


def _assert_rows_match(packed, shape, expected):
    back = unpack_matrix(packed, *shape)
    tolerance = expected.max(axis=1, keepdims=True) / 255 + 1e-7
    assert back.shape == expected.shape
    assert np.all(np.abs(back - expected) <= tolerance)


def test_packed_heads_round_trip_within_a_255th_of_each_rows_maximum():
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(50), size=50).astype(np.float32)
    back = unpack_matrix(pack_matrix(w), 50)
    assert np.all(np.abs(back - w) <= w.max(axis=1, keepdims=True) / 255 + 1e-7)
    assert len(pack_matrix(w)) == 50 * 4 + 50 * 50


def test_thumbnails_are_small_and_keep_the_diagonal():
    n = 100
    w = np.eye(n, dtype=np.float32)[None, None].repeat(2, axis=0)  # (2 layers, 1 head, n, n)
    tokens = TokenInfo(["a"] * n, [False] * n, [False] * n, [False] * n, list(range(n)), [0] * n)
    raw, t = thumbnails(AttentionResult("m", "a " * n, None, tokens, w), size=10)
    cells = np.frombuffer(raw, dtype=np.uint8).reshape(2, 1, t, t)
    assert t == 10 and len(raw) == 2 * 10 * 10
    assert np.all(np.diag(cells[0, 0]) == 255) and cells[0, 0, 0, 5] == 0


def test_opening_a_head_sends_that_head_in_full(result):
    view = AttentionView(result)
    assert view.head_key == "0:0" and not view.meta["long"]
    view.selected = {"layer": 1, "head": 1}
    assert view.head_key == "1:1"
    np.testing.assert_allclose(unpack_matrix(view.head_data, result.num_tokens), result.weights[1, 1], atol=1 / 255)
    assert view.window_data == b"" and view.pooled_data == b""  # short texts need no windows


def test_first_render_carries_thumbnails_and_one_head_not_every_head(result):
    view = AttentionView(result)
    n, layers, heads = result.num_tokens, result.num_layers, result.num_heads
    every_head_8bit = layers * heads * n * n
    assert len(view.thumbs) <= layers * heads * 24 * 24
    assert len(view.head_data) == n * 4 + n * n
    assert view.first_render_bytes() < every_head_8bit + 20_000


def test_token_text_is_data_and_the_standalone_page_has_no_raw_markup(result, tmp_path):
    view = AttentionView(result)
    assert "<img" in "".join(view.meta["tokens"]["text"])  # kept as text, for textContent
    page = view.to_html(tmp_path / "attention.html")
    body = page.split('<script type="module">', 1)[1]
    assert "</script" not in body.rsplit("</script>", 1)[0]
    assert (tmp_path / "attention.html").stat().st_size > 1000


def test_a_short_export_holds_every_head_by_default(result):
    page = AttentionView(result).to_html()
    every = sorted(f"{layer}:{h}" for layer in range(result.num_layers) for h in range(result.num_heads))
    assert f'"embedded": {json.dumps(every)}' in page


def test_a_view_takes_only_an_attention_result():
    with pytest.raises(TypeError, match="AttentionResult"):
        AttentionView({"weights": []})


def test_bertviz_is_a_view_function_and_the_result_stays_plain_data(result):
    assert not hasattr(AttentionResult, "to_bertviz")  # the engine's result never reaches into workbench.ui
    page = to_bertviz(result, "head").data
    assert "head_view" in page or "bertviz" in page
    assert '"mat"' in page and '"sat"' in page  # the result's own tokens are what bertviz draws
    with pytest.raises(ValueError, match="'head' or 'model'"):
        to_bertviz(result, "neuron")


# ----------------------------------------------------------------------------- long texts


def test_a_long_view_sends_the_first_window_and_the_pooled_head_not_the_head(long_view, long_result):
    n = long_result.num_tokens
    assert long_view.meta["long"] and long_view.head_data == b""
    assert long_view.window_shown == {"layer": 0, "head": 0, "start": 0, "stop": WINDOW_ROWS}
    _assert_rows_match(long_view.window_data, (WINDOW_ROWS, n), long_result.rows(0, 0, 0, WINDOW_ROWS))
    blocks = long_result.pooled.shape[-1]
    assert long_view.pooled_key == "0:0" and blocks == 256
    _assert_rows_match(long_view.pooled_data, (blocks, blocks), long_result.pooled[0, 0])


def test_the_first_render_at_4096_tokens_stays_under_2_mib(long_view):
    size = long_view.first_render_bytes()
    one_head_8bit = LONG_TOKENS * LONG_TOKENS
    assert size <= 2 * 2**20
    assert size < one_head_8bit / 8  # far less than a single head would be


def test_a_window_request_answers_exactly_the_rows_asked(long_view, long_result):
    long_view.window = {"layer": 1, "head": 1, "start": 2000, "stop": 2077}
    assert long_view.window_shown == {"layer": 1, "head": 1, "start": 2000, "stop": 2077}
    _assert_rows_match(long_view.window_data, (77, LONG_TOKENS), long_result.rows(1, 1, 2000, 2077))


def test_a_window_larger_than_the_cap_keeps_its_middle(long_view, long_result):
    long_view.window = {"layer": 0, "head": 1, "start": 1000, "stop": 3000}
    start = (1000 + 3000 - MAX_WINDOW_ROWS) // 2
    assert long_view.window_shown == {"layer": 0, "head": 1, "start": start, "stop": start + MAX_WINDOW_ROWS}
    assert len(long_view.window_data) == MAX_WINDOW_ROWS * 4 + MAX_WINDOW_ROWS * LONG_TOKENS


@pytest.mark.parametrize(
    "request_",
    [
        {"layer": 7, "head": 0, "start": 0, "stop": 10},
        {"layer": 0, "head": 0, "start": 5000, "stop": 5100},
        {"layer": 0, "head": 0, "start": "0", "stop": 10},
        {"layer": True, "head": 0, "start": 0, "stop": 10},
        {},
    ],
)
def test_a_malformed_window_request_is_ignored(long_view, request_):
    before = (dict(long_view.window_shown), long_view.window_data)
    long_view.window = request_
    assert (long_view.window_shown, long_view.window_data) == before


def test_opening_another_head_sends_its_pooled_map_and_the_rows_in_sight(long_view, long_result):
    long_view.window = {"layer": 0, "head": 0, "start": 640, "stop": 704}
    long_view.selected = {"layer": 1, "head": 0}
    assert long_view.pooled_key == "1:0"
    _assert_rows_match(long_view.pooled_data, (256, 256), long_result.pooled[1, 0])
    assert long_view.window_shown == {"layer": 1, "head": 0, "start": 640, "stop": 704}
    _assert_rows_match(long_view.window_data, (64, LONG_TOKENS), long_result.rows(1, 0, 640, 704))


def test_a_zoom_request_answers_the_region_at_full_resolution(long_view, long_result):
    long_view.zoom = {"layer": 1, "head": 1, "q0": 3000, "q1": 3100, "k0": 2950, "k1": 3030}
    assert long_view.zoom_shown == {"layer": 1, "head": 1, "q0": 3000, "q1": 3100, "k0": 2950, "k1": 3030}
    _assert_rows_match(long_view.zoom_data, (100, 80), long_result.region(1, 1, (3000, 3100), (2950, 3030)))


def test_a_zoom_larger_than_the_cap_is_cut_to_its_middle(long_view):
    long_view.zoom = {"layer": 0, "head": 0, "q0": 0, "q1": LONG_TOKENS, "k0": 100, "k1": 200}
    middle = (LONG_TOKENS - ZOOM_CELLS) // 2
    expected = {"layer": 0, "head": 0, "q0": middle, "q1": middle + ZOOM_CELLS, "k0": 100, "k1": 200}
    assert long_view.zoom_shown == expected
    assert len(long_view.zoom_data) == ZOOM_CELLS * 4 + ZOOM_CELLS * 100


def test_a_long_rollout_is_between_blocks_and_says_how_large(long_view, long_result):
    size, block = long_view.meta["rollout_size"], long_view.meta["rollout_block"]
    assert (size, block) == (256, LONG_TOKENS // 256)
    _assert_rows_match(long_view.rollout_data, (size, size), attention_rollout(long_result)[-1])
    assert long_view.flow_data == b"" and not long_view.meta["has_flow"]


def test_a_long_export_of_every_head_is_refused_before_it_is_built(long_view, long_result):
    every = [(layer, h) for layer in range(long_result.num_layers) for h in range(long_result.num_heads)]
    with pytest.raises(MemoryBudgetError, match=r"4 of 4 heads in full at 4,096 tokens .*heads=\[\(layer, head\)"):
        long_view.to_html(heads=every, memory_mb=256)


def test_a_long_export_holds_the_chosen_heads_in_full_and_every_head_pooled(long_view, long_result, tmp_path):
    page = long_view.to_html(tmp_path / "long.html", heads=[(1, 0)], memory_mb=256)
    assert '"embedded": ["1:0"]' in page
    held = json.loads(re.search(r"const heads = (\{.*?\});\n", page).group(1))
    assert list(held) == ["1:0"]
    _assert_rows_match(base64.b64decode(held["1:0"]), (LONG_TOKENS, LONG_TOKENS), long_result.rows(1, 0))
    pooled = json.loads(re.search(r"const pooled = (\{.*?\});\n", page).group(1))
    assert sorted(pooled) == ["0:0", "0:1", "1:0", "1:1"]


def test_a_long_export_holds_the_opened_head_by_default(long_result):
    view = AttentionView(long_result, layer=1, head=1)
    assert '"embedded": ["1:1"]' in view.to_html()


def test_an_export_of_a_head_that_does_not_exist_is_refused(long_view):
    with pytest.raises(ValueError, match=r"\(layer, head\) pairs with layer below 2"):
        long_view.to_html(heads=[(2, 0)])


def test_bertviz_refuses_a_long_result_and_names_the_length_it_takes(long_result):
    with pytest.raises(ProbeError, match=r"up to 512 tokens.*4,096 and keeps no full maps.*AttentionView"):
        to_bertviz(long_result)
