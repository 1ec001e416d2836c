"""Figures of readouts per layer: the lens-quality and probe-accuracy curves carry the results' numbers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from workbench.explain.lens_quality import lens_quality
from workbench.explain.probing import probe_layers
from workbench.figures import FigureError, plot
from workbench.training.tuned_lens import TunedLens

HELD_OUT = ["The cat sat on the warm mat near the dog.", "To be, or not to be: all the world is a stage."]


@pytest.fixture(scope="module")
def quality(tiny_gpt):
    translators = TunedLens.for_model(tiny_gpt)
    with torch.no_grad():
        translators.bias.copy_(torch.randn(translators.bias.shape, generator=torch.Generator().manual_seed(0)))
    return lens_quality(tiny_gpt, HELD_OUT, translators)


@pytest.fixture(scope="module")
def probe(tiny_bert):
    data = [(f"pos {i} word{i % 17}", "pos") for i in range(20)] + [(f"neg {i} <b>{i % 13}", "neg") for i in range(20)]
    return probe_layers(tiny_bert, data, progress=False)


def test_lens_quality_draws_kl_and_perplexity_per_layer_for_both_lenses_on_log_axes(quality):
    fig = plot(quality)
    assert len(fig.data) == 4  # KL: logit, tuned; perplexity: logit, tuned
    np.testing.assert_allclose(fig.data[0].y, quality.kl_logit)
    np.testing.assert_allclose(fig.data[1].y, quality.kl_tuned)
    np.testing.assert_allclose(fig.data[2].y, quality.perplexity_logit)
    np.testing.assert_allclose(fig.data[3].y, quality.perplexity_tuned)
    assert [t.name for t in fig.data[:2]] == ["logit lens", "tuned lens (untrained)"]
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    assert list(fig.layout.xaxis.ticktext) == quality.layer_names
    compared = len(quality.layer_names) - 1
    assert f"closer at {round(quality.layers_better * compared)} of {compared} layers" in fig.layout.title.subtitle.text
    assert plot(quality, log=False).layout.yaxis.type == "linear"


def test_lens_quality_without_a_tuned_lens_draws_the_logit_lens_alone(tiny_gpt):
    alone = lens_quality(tiny_gpt, HELD_OUT[:1])
    fig = plot(alone)
    assert [t.name for t in fig.data] == ["logit lens", "logit lens"]
    np.testing.assert_allclose(fig.data[1].y, alone.perplexity_logit)
    with pytest.raises(FigureError, match="log='yes' is not True or False; pass log=True or log=False"):
        plot(alone, log="yes")


def test_probe_accuracy_control_and_majority_are_drawn_with_the_selectivity_on_hover(probe):
    fig = plot(probe)
    accuracy, control, majority = fig.data
    np.testing.assert_allclose(accuracy.y, probe.accuracy[0])
    np.testing.assert_allclose(control.y, probe.control_accuracy[0])
    assert control.line.dash == "dot"
    np.testing.assert_allclose(majority.y, probe.majority)
    np.testing.assert_allclose([row[2] for row in accuracy.customdata], probe.selectivity[0], rtol=1e-6)
    assert "selectivity %{customdata[2]:+.3f}" in accuracy.hovertemplate
    assert list(fig.layout.xaxis.ticktext) == probe.layer_names
    best = probe.best_layer()
    assert f"best layer: {probe.layer_names[best]}" in fig.layout.title.subtitle.text


def test_a_probe_over_checkpoints_draws_a_line_per_checkpoint_or_the_one_asked_for(probe):
    later = dataclasses.replace(
        probe,
        checkpoints=["step 2", "step <b>4</b>"],
        accuracy=np.vstack([probe.accuracy, np.clip(probe.accuracy + 0.1, 0, 1)]),
        control_accuracy=np.vstack([probe.control_accuracy, probe.control_accuracy * 0.5]),
        data="<i>reviews</i>",
    )
    fig = plot(later)
    assert len(fig.data) == 5  # accuracy and control per checkpoint, and the majority baseline
    np.testing.assert_allclose(fig.data[2].y, later.accuracy[1])
    np.testing.assert_allclose(fig.data[3].y, later.control_accuracy[1])
    assert fig.data[2].name == "accuracy · step &lt;b&gt;4&lt;/b&gt;"
    assert "on &lt;i&gt;reviews&lt;/i&gt;" in fig.layout.title.text
    only = plot(later, checkpoint=0, control=False)
    assert len(only.data) == 2
    np.testing.assert_allclose(only.data[0].y, later.accuracy[0])


@pytest.mark.parametrize(
    ("options", "sentence"),
    [
        ({"checkpoint": 1}, r"checkpoint=1 is not one of this result's 1 checkpoints: give an index from 0 to 0"),
        ({"checkpoint": "last"}, r"checkpoint='last' is not one of"),
        ({"control": None}, r"control=None is not True or False"),
    ],
)
def test_a_bad_probe_option_gets_one_sentence(probe, options, sentence):
    with pytest.raises(FigureError, match=sentence):
        plot(probe, **options)
