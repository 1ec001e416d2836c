"""The attention view's state and payloads, with no kernel and no browser."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.explain import attention
from workbench.ui import AttentionView
from workbench.ui.attention_view import pack_matrix, thumbnails, unpack_matrix


@pytest.fixture(scope="module")
def result(tiny_bert):
    return attention(tiny_bert, "the cat sat on the <img src=x onerror=alert(1)> mat")


def test_packed_heads_round_trip_within_a_255th_of_each_rows_maximum():
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(50), size=50).astype(np.float32)
    back = unpack_matrix(pack_matrix(w), 50)
    assert np.all(np.abs(back - w) <= w.max(axis=1, keepdims=True) / 255 + 1e-7)
    assert len(pack_matrix(w)) == 50 * 4 + 50 * 50


def test_thumbnails_are_small_and_keep_the_diagonal():
    n = 100
    w = np.eye(n, dtype=np.float32)[None, None].repeat(2, axis=0)  # (2 layers, 1 head, n, n)
    raw, t = thumbnails(w, size=10)
    cells = np.frombuffer(raw, dtype=np.uint8).reshape(2, 1, t, t)
    assert t == 10 and len(raw) == 2 * 10 * 10
    assert np.all(np.diag(cells[0, 0]) == 255) and cells[0, 0, 0, 5] == 0


def test_opening_a_head_sends_that_head_in_full(result):
    view = AttentionView(result)
    assert view.head_key == "0:0"
    view.selected = {"layer": 1, "head": 1}
    assert view.head_key == "1:1"
    np.testing.assert_allclose(unpack_matrix(view.head_data, result.num_tokens), result.weights[1, 1], atol=1 / 255)


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


def test_a_view_takes_only_an_attention_result():
    with pytest.raises(TypeError, match="AttentionResult"):
        AttentionView({"weights": []})


def test_bertviz_is_a_view_function_and_the_result_stays_plain_data(result):
    from workbench.explain.attention import AttentionResult
    from workbench.ui import to_bertviz

    assert not hasattr(AttentionResult, "to_bertviz")  # the engine's result never reaches into workbench.ui
    page = to_bertviz(result, "head").data
    assert "head_view" in page or "bertviz" in page
    assert '"mat"' in page and '"sat"' in page  # the result's own tokens are what bertviz draws
    with pytest.raises(ValueError, match="'head' or 'model'"):
        to_bertviz(result, "neuron")
