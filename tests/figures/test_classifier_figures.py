"""Classifier evaluation: the numbers (confusion, per-class scores, precision–recall curves) and their figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.data import LabelledData
from workbench.errors import DataError, ProbeError
from workbench.explain.classifier_eval import evaluate_classifier, precision_recall_curve
from workbench.figures import FigureError, plot
from workbench.training.metrics import classification_metrics

TEXTS = [
    "The cat sat on the mat.",
    "To be, or not to be.",
    "A dog ran in the park.",
    "All the world's a stage.",
    "The quick brown fox.",
    "Shall I compare thee to a summer's day?",
]
LABELS = [0, 1, 0, 1, 0, 1]


@pytest.fixture(scope="module")
def clf(make_tiny):
    """A tiny classifier whose label names carry markup (read it only)."""
    return make_tiny("tiny-bert", kind="classifier", label_names=["<b>neg</b>", "pos & co"], seed=1)


@pytest.fixture(scope="module")
def evaluation(clf):
    """The tiny classifier evaluated on six texts, in batches of four."""
    return evaluate_classifier(clf, TEXTS, LABELS, batch_size=4)


def test_a_hand_checked_precision_recall_curve_and_its_average_precision():
    curve = precision_recall_curve(np.array([0.9, 0.8, 0.7, 0.6]), np.array([True, False, True, False]))
    np.testing.assert_allclose(curve.recall, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(curve.precision, [1, 1, 0.5, 2 / 3, 0.5])
    np.testing.assert_allclose(curve.thresholds, [0.9, 0.8, 0.7, 0.6])
    assert curve.average_precision == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_tied_scores_enter_the_curve_together():
    curve = precision_recall_curve(np.array([0.8, 0.8, 0.3]), np.array([True, False, True]))
    np.testing.assert_allclose(curve.recall, [0, 0.5, 1])
    np.testing.assert_allclose(curve.precision, [1, 0.5, 2 / 3])
    assert curve.average_precision == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)


def test_a_class_with_no_text_has_no_average_precision():
    curve = precision_recall_curve(np.array([0.2, 0.1]), np.array([False, False]))
    assert np.isnan(curve.average_precision) and curve.positives == 0


def test_the_average_precision_agrees_with_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    scores, positive = np.round(rng.random(60), 1), rng.random(60) < 0.4
    ours = precision_recall_curve(scores, positive)
    assert ours.average_precision == pytest.approx(metrics.average_precision_score(positive, scores))


def test_the_evaluation_counts_what_classification_metrics_counts(evaluation):
    probabilities = evaluation.probabilities
    assert probabilities.shape == (6, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(evaluation.predictions, probabilities.argmax(axis=1))
    summary = classification_metrics(evaluation.predictions, np.array(LABELS), 2)
    np.testing.assert_array_equal(evaluation.confusion, summary["confusion_matrix"])
    assert evaluation.accuracy == summary["accuracy"]
    assert evaluation.macro_f1 == pytest.approx(summary["macro_f1"])
    assert evaluation.precision.mean() == pytest.approx(summary["precision"])
    assert evaluation.recall.mean() == pytest.approx(summary["recall"])
    np.testing.assert_array_equal(evaluation.support, [3, 3])
    ap = [precision_recall_curve(probabilities[:, c], np.array(LABELS) == c).average_precision for c in (0, 1)]
    np.testing.assert_allclose(evaluation.average_precision, ap)


def test_the_evaluation_is_the_same_in_any_batch_size(clf, evaluation):
    one_by_one = evaluate_classifier(clf, TEXTS, LABELS, batch_size=1)
    np.testing.assert_allclose(one_by_one.probabilities, evaluation.probabilities, atol=1e-5)


def test_labelled_data_is_matched_to_the_classifier_by_label_name(clf, evaluation):
    swapped = LabelledData("swapped", TEXTS, [1 - y for y in LABELS], ["pos & co", "<b>neg</b>"])
    result = evaluate_classifier(clf, swapped)
    np.testing.assert_array_equal(result.labels, LABELS)
    assert result.data == "swapped" and result.label_names == ["<b>neg</b>", "pos & co"]
    by_name = evaluate_classifier(clf, TEXTS, ["<b>neg</b>" if y == 0 else "pos & co" for y in LABELS])
    np.testing.assert_array_equal(by_name.confusion, evaluation.confusion)


def test_to_dict_holds_the_numbers(evaluation):
    d = evaluation.to_dict()
    assert d["confusion"] == evaluation.confusion.tolist()
    assert d["curves"][1]["average_precision"] == pytest.approx(evaluation.curves[1].average_precision)
    assert repr(evaluation).startswith("ClassifierEvaluation(tiny-bert on texts: 6 texts, 2 classes, accuracy")


@pytest.mark.parametrize(
    ("call", "error", "sentence"),
    [
        (
            lambda clf, lm: evaluate_classifier(lm, TEXTS, LABELS),
            ProbeError,
            "needs a classifier, got a masked-lm model",
        ),
        (lambda clf, lm: evaluate_classifier(clf, TEXTS, [0, 1]), DataError, "6 texts but 2 labels"),
        (lambda clf, lm: evaluate_classifier(clf, TEXTS[:1], [2]), DataError, "The label 2 is out of range"),
        (lambda clf, lm: evaluate_classifier(clf, TEXTS[:1], ["maybe"]), DataError, "'maybe' is not one of"),
        (lambda clf, lm: evaluate_classifier(clf, [], []), DataError, "There are no texts to evaluate on"),
        (lambda clf, lm: evaluate_classifier(clf, TEXTS), DataError, "needs the true labels"),
        (lambda clf, lm: evaluate_classifier(clf, ["  "], [0]), DataError, "Text 0 is empty"),
        (lambda clf, lm: evaluate_classifier(clf, TEXTS, LABELS, batch_size=0), ProbeError, "batch_size must be"),
        (
            lambda clf, lm: evaluate_classifier(clf, LabelledData("x", ["a b"], [0], ["spam", "ham"])),
            DataError,
            r"The data's labels \(spam, ham\) are not the classifier's",
        ),
    ],
)
def test_bad_input_gets_one_sentence(tiny_classifier, tiny_bert, call, error, sentence):
    with pytest.raises(error, match=sentence):
        call(tiny_classifier, tiny_bert)


def test_the_confusion_matrix_shows_the_counts_under_escaped_label_names(evaluation):
    fig = plot(evaluation, view="confusion")
    heatmap = fig.data[0]
    np.testing.assert_array_equal(heatmap.z, evaluation.confusion)
    np.testing.assert_array_equal(heatmap.text, evaluation.confusion)
    assert list(fig.layout.xaxis.ticktext) == ["&lt;b&gt;neg&lt;/b&gt;", "pos &amp; co"]
    assert list(fig.layout.yaxis.ticktext) == ["&lt;b&gt;neg&lt;/b&gt;", "pos &amp; co"]
    normalized = plot(evaluation, view="confusion", normalize=True).data[0]
    np.testing.assert_allclose(
        normalized.z, evaluation.confusion / evaluation.confusion.sum(1, keepdims=True), atol=1e-4
    )


def test_the_per_class_bars_are_precision_recall_and_f1(evaluation):
    fig = plot(evaluation, view="per-class")
    bars = {bar.name: bar for bar in fig.data}
    for name, values in (("precision", evaluation.precision), ("recall", evaluation.recall), ("F1", evaluation.f1)):
        np.testing.assert_allclose(bars[name].y, values, rtol=1e-6)
    assert fig.layout.barmode == "group"


def test_the_precision_recall_curves_name_each_class_with_its_average_precision(evaluation):
    fig = plot(evaluation, view="pr")
    for trace, curve in zip(fig.data, evaluation.curves, strict=True):
        np.testing.assert_allclose(trace.x, curve.recall, rtol=1e-6)
        np.testing.assert_allclose(trace.y, curve.precision, rtol=1e-6)
        assert f"(AP {curve.average_precision:.3f})" in trace.name
    assert fig.data[0].name.startswith("&lt;b&gt;neg&lt;/b&gt;")


def test_the_whole_figure_has_the_three_views_and_renders_outside_jupyter(evaluation, tmp_path):
    fig = plot(evaluation)
    assert [type(t).__name__ for t in fig.data] == ["Heatmap", "Bar", "Bar", "Bar", "Scatter", "Scatter"]
    assert "accuracy" in fig.layout.title.text
    fig.write_html(tmp_path / "clf.html", include_plotlyjs=False)
    assert "<b>neg</b>" not in json.dumps(json.loads(fig.to_json()))  # plotly's JSON may write < as \u003c


def test_an_unknown_view_is_refused_with_the_views_there_are(evaluation):
    with pytest.raises(FigureError, match="view='roc' is not a view of a classifier evaluation: use one of all"):
        plot(evaluation, view="roc")
