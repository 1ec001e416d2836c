"""The embedding projector: the engine's principal axes of pooled hidden states, and the figure that draws them."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from workbench.errors import ProbeError
from workbench.explain.projection import pca, project_layers
from workbench.figures import FigureError, plot, project

TEXTS = [
    "The cat sat on the mat.",
    "A dog ran in the park while the cat slept.",
    "Shall I compare thee to a summer's day?",
    "To be, or not to be, that is the question.",
    "All the world's a stage.",
    "The quick brown fox jumps over the lazy dog.",
    "<b>bold</b> & plain",
]
LABELS = ["animal", "animal", "verse", "verse", "verse", "animal", "markup"]


def _mean_pooled(bundle, texts):
    """Every row's mean hidden state of each text, run alone (no padding at all): (rows, texts, hidden)."""
    rows = []
    with torch.no_grad():
        for t in texts:
            ids = bundle.tokenizer(t, return_tensors="pt")["input_ids"]
            states = bundle.model.base_model(ids, output_hidden_states=True).hidden_states
            rows.append(torch.stack(states)[:, 0].mean(1).numpy())  # (rows, hidden)
    return np.stack(rows, 1).astype(np.float64)


def _reference_pca(features, dims):
    """PCA by the covariance's eigenvectors (not an SVD), each flipped so its largest loading is positive."""
    coords, shares = [], []
    for row in features:
        centred = row - row.mean(0)
        values, vectors = np.linalg.eigh(centred.T @ centred)
        order = np.argsort(values)[::-1][:dims]
        axes = vectors[:, order]  # (hidden, dims)
        axes = axes * np.sign(axes[np.abs(axes).argmax(0), np.arange(dims)])
        coords.append(centred @ axes)
        shares.append(values[order] / values.sum())
    return np.stack(coords), np.stack(shares)


@pytest.fixture(scope="module")
def labelled(tiny_bert):
    return project_layers(tiny_bert, TEXTS, LABELS, progress=False)


@pytest.fixture(scope="module")
def classified(tiny_classifier):
    return project_layers(tiny_classifier, TEXTS, [0, 1, 0, 1, 1, 0, 1], progress=False)


# The engine


def test_coords_are_each_rows_principal_components_of_the_mean_pooled_states(tiny_bert, labelled):
    coords, shares = _reference_pca(_mean_pooled(tiny_bert, TEXTS), 2)
    assert labelled.coords.shape == (3, len(TEXTS), 2) and labelled.coords.dtype == np.float32
    scale = np.abs(coords).max()
    np.testing.assert_allclose(labelled.coords, coords, atol=1e-4 * scale)
    np.testing.assert_allclose(labelled.explained_variance, shares, atol=1e-5)
    assert labelled.layer_names == ["embeddings", "layer 1", "layer 2"]


def test_explained_variance_is_a_decreasing_share_of_at_most_the_whole(tiny_gpt):
    result = project_layers(tiny_gpt, TEXTS, pooling="last", dims=3, progress=False)
    shares = result.explained_variance  # (rows, 3)
    assert shares.shape == (3, 3)
    assert np.all(shares > 0) and np.all(shares.sum(1) <= 1 + 1e-6)
    assert np.all(np.diff(shares, axis=1) <= 1e-7)
    assert result.predictions is None and result.labels is None and result.pooling == "last"


def test_the_same_texts_in_another_order_give_the_same_points():
    features = np.random.default_rng(0).normal(size=(2, 9, 16))  # (rows, texts, hidden)
    coords, _ = pca(features, 3)
    reordered, _ = pca(features[:, ::-1], 3)
    np.testing.assert_allclose(reordered[:, ::-1], coords, atol=1e-5)  # an SVD alone may flip either axis
    mirrored, _ = pca(-features, 3)
    assert not np.allclose(mirrored, coords, atol=1e-3)  # the sign follows the data, not a fixed convention


def test_a_row_where_every_text_is_the_same_vector_sits_at_the_origin(tiny_bert):
    result = project_layers(tiny_bert, TEXTS, pooling="cls", progress=False)
    # Every text's first token is [CLS] at position 0: before any layer mixes, all texts share that vector.
    np.testing.assert_array_equal(result.coords[0], 0)
    np.testing.assert_array_equal(result.explained_variance[0], 0)
    assert np.abs(result.coords[-1]).max() > 0


def test_a_classifier_names_its_integer_labels_and_its_predictions(tiny_classifier, classified):
    assert classified.labels == ["negative", "positive", "negative", "positive", "positive", "negative", "positive"]
    expected = []
    with torch.no_grad():
        for t in TEXTS:
            logits = tiny_classifier.model(**tiny_classifier.tokenizer(t, return_tensors="pt")).logits
            expected.append(tiny_classifier.label_names[int(logits.argmax())])
    assert classified.predictions == expected


def test_to_dict_carries_every_field_as_plain_values(labelled):
    data = labelled.to_dict()
    assert data["labels"] == LABELS and data["texts"] == TEXTS and data["method"] == "pca"
    np.testing.assert_allclose(data["coords"], labelled.coords, atol=1e-5)
    assert len(data["explained_variance"]) == 3 and data["predictions"] is None


# The figure


def _visible(fig):
    return [t for t in fig.data if t.visible]


def _points_of(fig, result, layer, axis="x"):
    """The visible traces' values on ``axis``, put back in the texts' order by their hover text."""
    out = np.full(len(result.texts), np.nan)
    for trace in _visible(fig):
        for value, hover in zip(getattr(trace, axis), trace.text, strict=True):
            out[_hover_index(result, hover)] = value
    return out


def _hover_index(result, hover):
    from workbench.figures.projector import _hover_text

    return [_hover_text(t) for t in result.texts].index(hover)


def test_the_chosen_rows_points_are_the_results_coords(labelled):
    fig = plot(labelled, layer=1)
    assert all(t.meta["layer"] == 1 for t in _visible(fig)) and len(_visible(fig)) == 3  # one trace per label
    np.testing.assert_allclose(_points_of(fig, labelled, 1, "x"), labelled.coords[1, :, 0])
    np.testing.assert_allclose(_points_of(fig, labelled, 1, "y"), labelled.coords[1, :, 1])
    assert fig.layout.xaxis.title.text == f"PC1 ({labelled.explained_variance[1, 0]:.0%} of variance)"
    assert plot(labelled).layout.sliders[0].active == 2  # -1: the last row


def test_colour_groups_hold_the_texts_with_that_label(labelled):
    fig = plot(labelled)
    for trace in _visible(fig):
        members = [_hover_index(labelled, h) for h in trace.text]
        assert {LABELS[i] for i in members} == {trace.name}
    assert sorted(t.name for t in _visible(fig)) == ["animal", "markup", "verse"]


def test_colour_by_prediction_groups_the_texts_by_what_the_classifier_says(classified):
    fig = plot(classified, color="prediction")
    for trace in _visible(fig):
        assert {classified.predictions[_hover_index(classified, h)] for h in trace.text} == {trace.name}
    assert fig.layout.legend.title.text == "predicted label"


def test_the_slider_has_one_step_per_row_showing_that_rows_traces(labelled):
    fig = plot(labelled)
    (slider,) = fig.layout.sliders
    assert [s.label for s in slider.steps] == labelled.layer_names
    for row, step in enumerate(slider.steps):
        visible, titles, indices = step.args
        assert list(indices) == list(range(len(fig.data)))
        assert list(visible["visible"]) == [fig.data[i].meta["layer"] == row for i in indices]
        assert titles["yaxis.title.text"] == f"PC2 ({labelled.explained_variance[row, 1]:.0%} of variance)"


def test_hover_shows_markup_in_a_text_as_written_and_cuts_a_long_text():
    from workbench.figures.projector import _hover_text

    result = project_layers_fake(["<b>bold</b> & plain", "word " * 60, "short"])
    fig = plot(result)
    shown = [h for t in fig.data for h in t.text]
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; plain" in shown
    assert not any("<b>" in h for h in shown)
    long = _hover_text("word " * 60)
    assert long.endswith("…") and len(long.replace("<br>", " ")) <= 120
    assert {t.name for t in fig.data} == {"&lt;i&gt;x&lt;/i&gt;"}  # a label name is escaped too
    assert fig.data[0].customdata[0][0] == "&lt;i&gt;x&lt;/i&gt;"
    assert "%{text}" in fig.data[0].hovertemplate and "label: %{customdata[0]}" in fig.data[0].hovertemplate


def project_layers_fake(texts):
    from workbench.explain.projection import ProjectionResult

    coords, shares = pca(np.random.default_rng(1).normal(size=(2, len(texts), 5)), 2)
    return ProjectionResult(
        model="fake",
        texts=texts,
        labels=["<i>x</i>"] * len(texts),
        predictions=None,
        layer_names=["embeddings", "layer 1"],
        coords=coords,
        explained_variance=shares,
        method="pca",
        pooling="mean",
    )


def test_three_dims_give_a_3d_scatter_with_every_axis(tiny_bert):
    fig = project(tiny_bert, TEXTS, LABELS, dims=3, layer=0, progress=False)
    result = project_layers(tiny_bert, TEXTS, LABELS, dims=3, progress=False)
    assert all(isinstance(t, go.Scatter3d) for t in fig.data)
    np.testing.assert_allclose(_points_of(fig, result, 0, "z"), result.coords[0, :, 2])
    assert fig.layout.scene.zaxis.title.text == f"PC3 ({result.explained_variance[0, 2]:.0%} of variance)"
    assert "scene.zaxis.title.text" in fig.layout.sliders[0].steps[1].args[1]


def test_two_models_are_drawn_side_by_side_under_one_slider(tiny_bert, tiny_classifier):
    fig = project({"before": tiny_bert, "after": tiny_classifier}, TEXTS, LABELS, progress=False)
    assert [a.text for a in fig.layout.annotations] == ["before", "after"]
    panels = {t.meta["panel"]: t.xaxis for t in fig.data}
    assert panels == {0: "x", 1: "x2"}
    (slider,) = fig.layout.sliders
    visible = slider.steps[1].args[0]["visible"]
    assert list(visible) == [t.meta["layer"] == 1 for t in fig.data]
    assert {t.meta["panel"] for t, v in zip(fig.data, visible, strict=True) if v} == {0, 1}
    assert not any(t.showlegend for t in fig.data if t.meta["panel"] == 1)  # one legend entry per label
    after = project_layers(tiny_classifier, TEXTS, LABELS, progress=False)
    shown = [t for t in _visible(fig) if t.meta["panel"] == 1]
    np.testing.assert_allclose(
        np.sort(np.concatenate([t.x for t in shown])), np.sort(after.coords[-1, :, 0]), rtol=1e-6
    )


def test_models_with_different_rows_get_a_slider_each(tiny_bert, make_tiny):
    shallow = make_tiny("tiny-bert", layers=1)
    fig = project([tiny_bert, shallow], TEXTS, progress=False)
    first, second = fig.layout.sliders
    assert len(first.steps) == 3 and len(second.steps) == 2
    assert all(fig.data[i].meta["panel"] == 1 for i in second.steps[0].args[2])
    assert fig.to_json() and len(fig.data) == 5  # no labels, no predictions: one trace per row


def test_a_figure_works_outside_jupyter(labelled, tmp_path):
    fig = plot(labelled)
    fig.write_html(tmp_path / "projector.html", include_plotlyjs=False)
    assert (tmp_path / "projector.html").stat().st_size < 60_000


# Bad input: one sentence each


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda b, r: project_layers(b, TEXTS[:2]), ProbeError, "at least 3 texts, got 2"),
        (lambda b, r: project_layers(b, TEXTS, LABELS[:3]), ProbeError, "7 texts but 3 labels"),
        (lambda b, r: project_layers(b, [*TEXTS, " "]), ProbeError, "Text 7 is empty"),
        (lambda b, r: project_layers(b, TEXTS, dims=4), ProbeError, "dims must be 2 or 3"),
        (lambda b, r: project_layers(b, TEXTS, method="umap"), ProbeError, "the projector computes 'pca'"),
        (lambda b, r: project_layers(b, TEXTS, pooling="max", progress=False), ProbeError, "Unknown pooling 'max'"),
        (lambda b, r: plot(r, layer=3), ProbeError, "Layer 3 is out of range: tiny-bert has 3 rows"),
        (lambda b, r: project(b, TEXTS, layer=-4, progress=False), ProbeError, "Layer -4 is out of range"),
        (lambda b, r: project(b, TEXTS, layer="last"), ProbeError, "layer must be a whole number"),
        (lambda b, r: project([b, b, b], TEXTS), ProbeError, "project draws one model or two"),
        (lambda b, r: plot([r, r, r]), FigureError, "at most 2 projections"),
        (lambda b, r: plot(r, color="size"), FigureError, "Unknown color 'size'"),
        (lambda b, r: project(b, TEXTS, color="label"), FigureError, "color='label' needs labels"),
        (lambda b, r: plot(r, color="prediction"), FigureError, "color='prediction' needs a classifier"),
    ],
)
def test_bad_input_gets_one_sentence(tiny_bert, labelled, call, error, words):
    with pytest.raises(error, match=words) as caught:
        call(tiny_bert, labelled)
    assert str(caught.value).count(". ") == 0 and str(caught.value).endswith(".")
