"""The compression figure: the drift map holds the report's Jensen–Shannon values, the table its numbers, and an
example both models' attributions."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.compress import compare_models, quantize
from workbench.figures import FigureError, plot

TEXTS = ["the <b>cat</b> sat & ran", "To be, or not to be."]


@pytest.fixture(scope="module")
def report(tiny_classifier):
    from workbench.data import load_labelled

    data = load_labelled([("the cat sat", "positive"), ("a dog ran", "negative")] * 2)
    return compare_models(
        tiny_classifier, quantize(tiny_classifier), eval_data=data, texts=TEXTS, lengths=(8,), repeats=1
    )


def test_the_drift_map_holds_each_heads_jensen_shannon_divergence(report):
    fig = plot(report)
    heat = fig.data[0]
    np.testing.assert_array_equal(heat.z, report.attention_js)
    assert np.asarray(heat.z).shape == (2, 2)
    assert "bits" in heat.hovertemplate
    title = fig.layout.title.text
    assert title.startswith("tiny-bert → tiny-bert · int8") and f"{report.attention_drift:.3g} bits" in title


def test_the_table_shows_size_speed_metric_and_agreement_as_the_report_has_them(report):
    table = plot(report).data[1]
    what, original, compressed, change = (list(column) for column in table.cells.values)
    assert what == [
        "weights (MB)",
        "latency @8 tokens (ms)",
        "accuracy",
        "same prediction",
        "attribution agreement (occlusion, Spearman)",
    ]
    assert original[0] == f"{report.size_bytes['original'] / 1e6:.4g}"
    assert compressed[0] == f"{report.size_bytes['compressed'] / 1e6:.4g}"
    assert change[0] == f"×{report.size_ratio:.2f}"
    assert original[1] == f"{report.latency_ms['original'][8]:.4g}"
    assert compressed[2] == f"{report.metric_values['compressed']:.4g}"
    assert change[3] == f"{report.prediction_agreement:.1%}"
    assert change[4] == f"{report.mean_spearman:.4g}"


def test_an_example_shows_both_models_attributions_on_its_tokens_escaped(report):
    fig = plot(report, example=0)
    example = report.examples[0]
    np.testing.assert_allclose(fig.data[0].y, example["original"], rtol=1e-6)
    np.testing.assert_allclose(fig.data[1].y, example["compressed"], rtol=1e-6)
    assert [d.name for d in fig.data] == ["tiny-bert", "tiny-bert · int8"]
    ticks = list(fig.layout.xaxis.ticktext)
    assert "&lt;" in ticks and "&amp;" in ticks and not any("<" in t for t in ticks)
    assert "Spearman" in fig.layout.title.text


def test_an_example_the_report_does_not_hold_is_refused_with_a_sentence(report):
    with pytest.raises(FigureError, match=r"example=2 is not in the report, which holds examples 0 to 1\."):
        plot(report, example=2)
    with pytest.raises(FigureError, match=r"example='first' is not in the report"):
        plot(report, example="first")


def test_a_report_without_texts_shows_its_table_and_says_there_is_no_drift(tiny_classifier):
    bare = compare_models(tiny_classifier, tiny_classifier, lengths=(8,), repeats=1)
    fig = plot(bare)
    assert len(fig.data) == 1 and fig.data[0].type == "table"
    assert "no attention drift: no texts were given" in fig.layout.title.text
    with pytest.raises(FigureError, match=r"holds no examples \(no texts were given"):
        plot(bare, example=0)


def test_the_compression_figure_serialises_small(report, tmp_path):
    fig = plot(report)
    assert len(fig.to_json()) < 20_000
    fig.write_html(tmp_path / "report.html", include_plotlyjs=False)
    assert "attention drift per head" in (tmp_path / "report.html").read_text()
