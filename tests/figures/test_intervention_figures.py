"""Figures of interventions: patching, tracing and ablation maps carry the results' values on a scale centred at 0."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from workbench.explain.ablation import ablate, ablate_each_head
from workbench.explain.patching import patch
from workbench.figures import FigureError, plot
from workbench.figures._style import token_labels

CLEAN = "<b> The cat sat on the mat and looked at the"
CORRUPTED = "<b> The dog sat on the mat and looked at the"
ANSWERS = (" dog", " cat")


@pytest.fixture(scope="module")
def patched(tiny_gpt):
    return patch(tiny_gpt, CLEAN, CORRUPTED, ANSWERS, sites="resid_pre")


def test_a_patching_map_holds_the_values_layers_up_and_the_clean_tokens_across(patched):
    fig = plot(patched)
    np.testing.assert_allclose(fig.data[0].z, patched.values, rtol=1e-6)
    assert list(fig.layout.yaxis.ticktext) == [f"layer {layer}" for layer in patched.layers]
    labels = token_labels([patched.clean_tokens.text[p] for p in patched.columns])
    marked = set(patched.differing)
    assert marked  # " cat" and " dog" differ
    assert list(fig.layout.xaxis.ticktext) == [
        f"<b>{label}</b>" if p in marked else label for p, label in zip(patched.columns, labels, strict=True)
    ]
    assert fig.layout.xaxis.ticktext[0] == "&lt;"  # the text's own "<b>" is text, not bold
    largest = float(np.nanmax(np.abs(patched.values)))
    assert fig.layout.coloraxis.cmid == 0
    assert fig.layout.coloraxis.cmin == pytest.approx(-largest) and fig.layout.coloraxis.cmax == pytest.approx(largest)
    layer, column = patched.layers[1], patched.columns[3]
    assert fig.data[0].customdata[1][3][0] == f"resid_pre.{layer}"
    assert f"position {column}:" in fig.data[0].customdata[1][3][1]
    assert "&lt;b&gt;" in fig.layout.title.text and "<b> The" not in fig.layout.title.text


def test_an_extent_fixes_the_colour_range_and_a_bad_one_gets_a_sentence(patched):
    fig = plot(patched, extent=2.5)
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (-2.5, 2.5)
    for bad in (0, -1.0, float("nan"), "big"):
        with pytest.raises(FigureError, match=r"is not a colour range: give a positive number"):
            plot(patched, extent=bad)


def test_a_head_map_has_heads_across_and_head_sites_on_hover(tiny_gpt):
    heads = patch(tiny_gpt, CLEAN, CORRUPTED, ANSWERS, sites="head")
    fig = plot(heads)
    np.testing.assert_allclose(fig.data[0].z, heads.values, rtol=1e-6)
    assert list(fig.layout.xaxis.ticktext) == [f"head {h}" for h in heads.columns]
    assert fig.data[0].customdata[1][0][0] == f"head.{heads.layers[1]}.{heads.columns[0]}"


def test_causal_tracing_marks_the_noised_subject(tiny_gpt):
    traced = patch(tiny_gpt, CLEAN, None, ANSWERS, subject="The cat", samples=2, sites="mlp_out")
    fig = plot(traced)
    np.testing.assert_allclose(fig.data[0].z, traced.values, rtol=1e-6)
    bold = [i for i, label in enumerate(fig.layout.xaxis.ticktext) if label.startswith("<b>")]
    assert [traced.columns[i] for i in bold] == traced.subject
    assert "noised subject, 2 noise draws" in fig.layout.title.subtitle.text


def test_maps_of_several_kinds_are_drawn_side_by_side_on_one_scale(tiny_gpt, patched):
    mlp = patch(tiny_gpt, CLEAN, CORRUPTED, ANSWERS, sites="mlp_out")
    fig = plot([patched, mlp])
    assert [a.text for a in fig.layout.annotations] == ["resid_pre", "mlp_out"]
    np.testing.assert_allclose(fig.data[1].z, mlp.values, rtol=1e-6)
    largest = max(float(np.nanmax(np.abs(r.values))) for r in (patched, mlp))
    assert fig.layout.coloraxis.cmax == pytest.approx(largest)
    other = copy.copy(mlp)
    other.clean = "another text"
    with pytest.raises(FigureError, match="must be one method on one model and clean text"):
        plot([patched, other])


def test_the_map_of_each_head_ablated_draws_the_change_of_the_metric(tiny_gpt):
    effects = ablate_each_head(tiny_gpt, CLEAN)
    fig = plot(effects)
    np.testing.assert_allclose(fig.data[0].z, effects.values, rtol=1e-6)
    assert fig.layout.coloraxis.colorbar.title.text.startswith("change of ")
    assert fig.layout.title.text.startswith("Head ablation: tiny-gpt")


def test_an_ablation_draws_the_predictions_before_and_after(tiny_gpt):
    result = ablate(tiny_gpt, CLEAN, [(0, 1), (1, 0)], top_k=4)
    fig = plot(result)
    np.testing.assert_allclose(fig.data[0].x, result.before.probabilities, rtol=1e-6)
    np.testing.assert_allclose(fig.data[1].x, result.after.probabilities, rtol=1e-6)
    assert list(fig.layout.yaxis2.ticktext) == token_labels(result.after.tokens)
    assert fig.layout.annotations[1].text == "after zero-ablating 0.1, 1.0"
    assert f"({result.change:+.4g})" in fig.layout.title.subtitle.text
    assert len(plot(result, k=2).data[0].x) == 2
    with pytest.raises(FigureError, match="k=5 is out of range: this result holds 4 predictions"):
        plot(result, k=5)
