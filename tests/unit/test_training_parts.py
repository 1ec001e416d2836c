"""The Trainer's parts that need no training run: the plan of a run, the shares of each process, FLOPs, precision."""

from __future__ import annotations

import math
import warnings
from itertools import islice

import pytest
import torch
import transformers

from workbench.errors import DataError
from workbench.training import TrainConfig, plan_run
from workbench.training import precision as precision_module
from workbench.training.metrics import finite_or_none, flops_per_token, improves, lower_is_better, parameter_split
from workbench.training.sharding import evaluation_batches, micro_batch_indices, process_share

# ------------------------------------------------------------------- the plan


@pytest.mark.parametrize("processes", [1, 2])
def test_a_batch_larger_than_the_data_gets_one_error_and_one_sentence_in_one_process_or_several(processes):
    with pytest.raises(DataError, match=r"is larger than the training data \(6 examples\)") as caught:
        plan_run(TrainConfig(batch_size=8), train_examples=6, processes=processes)
    assert str(caught.value).count(". ") == 0
    assert (" per process x 2 processes" in str(caught.value)) == (processes == 2)


def test_empty_training_or_evaluation_data_is_refused():
    with pytest.raises(DataError, match="training data is empty"):
        plan_run(TrainConfig(batch_size=4), train_examples=0)
    with pytest.raises(DataError, match="evaluation data is empty"):
        plan_run(TrainConfig(batch_size=4), train_examples=8, eval_examples=0)


def test_the_plan_counts_micro_batches_and_steps_from_epochs():
    # 10 examples in global batches of 2 x 2: 3 micro-batches an epoch; 2 per step leaves 1 step an epoch.
    plan = plan_run(TrainConfig(batch_size=2, gradient_accumulation_steps=2, epochs=2.0), 10, processes=2)
    assert (plan.global_batch, plan.micro_batches_per_epoch, plan.steps_per_epoch, plan.max_steps) == (4, 3, 1, 2)
    # A fraction of an epoch rounds up: 10 steps an epoch x 0.25 = 2.5 -> 3.
    assert plan_run(TrainConfig(batch_size=4, epochs=0.25), 40).max_steps == 3
    assert plan_run(TrainConfig(batch_size=4, max_steps=7, warmup_ratio=0.5), 40).max_steps == 7
    assert plan_run(TrainConfig(batch_size=4, max_steps=7, warmup_ratio=0.5), 40).warmup_steps == 3


# ------------------------------------------------------------ who takes what


def _epoch_of_two_processes(examples: int, batch_size: int) -> tuple[list[list[int]], list[list[int]]]:
    micro_batches = math.ceil(examples / (batch_size * 2))
    shares = []
    for rank in (0, 1):
        indices = micro_batch_indices(
            lambda epoch: list(range(examples)), micro_batches, batch_size, rank=rank, processes=2
        )
        shares.append(list(islice(indices, micro_batches)))
    return shares[0], shares[1]


def test_two_processes_take_disjoint_shares_and_the_last_global_batch_is_filled_from_the_start():
    first, second = _epoch_of_two_processes(examples=10, batch_size=2)
    assert first == [[0, 1], [4, 5], [8, 9]]
    assert second == [[2, 3], [6, 7], [0, 1]]  # the epoch's last global batch wraps: no process gets nothing
    seen = [i for batch in first + second for i in batch]
    assert set(seen) == set(range(10))


def test_one_process_keeps_a_short_last_batch():
    batches = list(islice(micro_batch_indices(lambda epoch: list(range(10)), 3, 4), 3))
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_micro_batches_resume_at_their_global_index_with_the_next_epochs_order():
    def order(epoch: int) -> list[int]:
        return list(range(6)) if epoch == 0 else list(reversed(range(6)))

    straight = list(islice(micro_batch_indices(order, 3, 2), 6))
    resumed = list(islice(micro_batch_indices(order, 3, 2, start=2), 4))
    assert resumed == straight[2:]
    assert straight[3] == [5, 4]  # epoch 1 follows its own order


def test_evaluation_batches_cover_the_set_once_and_the_processes_split_them():
    assert evaluation_batches(10, 4) == [range(4), range(4, 8), range(8, 10)]
    assert evaluation_batches(10, 4, limit=2) == [range(4), range(4, 8)]
    batches = ["a", "b", "c", "d", "e"]
    assert process_share(batches, 0, 2) == ["a", "c", "e"]
    assert process_share(batches, 1, 2) == ["b", "d"]


# -------------------------------------------------------------------- metrics


def test_losses_and_perplexities_are_better_lower_and_everything_else_higher():
    assert lower_is_better("eval_loss") and lower_is_better("eval_perplexity")
    assert not lower_is_better("eval_accuracy")
    assert improves("eval_loss", 1.0, 2.0) and not improves("eval_loss", 2.0, 1.0)
    assert improves("eval_accuracy", 0.9, 0.8) and not improves("eval_accuracy", 0.8, 0.9)
    assert improves("eval_loss", 5.0, None)
    assert not improves("eval_loss", 1.95, 2.0, min_delta=0.1)


def test_nan_and_infinity_become_none_and_other_values_stay():
    assert finite_or_none(math.nan) is None and finite_or_none(-math.inf) is None
    assert finite_or_none(1.5) == 1.5 and finite_or_none(3) == 3 and finite_or_none("x") == "x"


def test_flops_of_a_causal_lm_count_the_body_the_head_and_attention_but_not_the_embedding_lookup():
    config = transformers.LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        tie_word_embeddings=True,
    )
    model = transformers.LlamaForCausalLM(config)
    # By hand, per layer: q, k, v, o 4 x 32 x 32; gate, up, down 3 x 32 x 64; two norms 2 x 32. Then the final norm.
    body = 2 * (4 * 32 * 32 + 3 * 32 * 64 + 2 * 32) + 32
    head = 32 * 100  # the tied output head multiplies by the embedding matrix at every position
    split = parameter_split(model)
    assert (split.body, split.head, split.embedding) == (body, head, 0)
    expected = 6 * body + 6 * head + 12 * 2 * 32 * 16
    assert flops_per_token(model, seq_len=16) == expected == 155_328


def test_flops_of_a_sparse_masked_lm_head_count_the_head_only_at_the_masked_share():
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
    )
    model = transformers.BertForMaskedLM(config)
    per_layer = 3 * (32 * 32 + 32) + (32 * 32 + 32) + 64 + (32 * 64 + 64) + (64 * 32 + 32) + 64
    body = 2 * per_layer + 64  # and the embeddings' layer norm; word, position and type tables are lookups
    head = (32 * 32 + 32) + 64 + 32 * 100 + 100  # transform, its norm, the tied decoder and its bias
    split = parameter_split(model)
    assert (split.body, split.head) == (body, head)
    assert flops_per_token(model, 16, head_share=0.15) == pytest.approx(6 * body + 6 * 0.15 * head + 12 * 2 * 32 * 16)
    assert flops_per_token(model, 16, head_share=0.15) < flops_per_token(model, 16, head_share=1.0)


# ------------------------------------------------------------------ precision


def test_bf16_on_a_cpu_without_native_bf16_warns_in_one_sentence_that_auto_picks_fp32(monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match=r"much slower than fp32, about 170x .*precision='auto' picks fp32 here\.$"):
        assert precision_module.resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert precision_module.resolve_precision("auto", torch.device("cpu")) == "fp32"


def test_bf16_on_a_cpu_with_native_bf16_and_fp32_anywhere_say_nothing(monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision_module.resolve_precision("bf16", torch.device("cpu")) == "bf16"
        assert precision_module.resolve_precision("auto", torch.device("cpu")) == "bf16"
        monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: False)
        assert precision_module.resolve_precision("fp32", torch.device("cpu")) == "fp32"


def test_measuring_the_cpu_peak_leaves_the_seeded_random_stream_alone():
    # The first MFU figure of a process measures the CPU's matmul peak mid-run; drawing its
    # matrices from the global generator shifted every later mask, so the first run in a kernel
    # could not be repeated exactly.
    from workbench.training import metrics

    metrics._measured_cpu_peak.cache_clear()
    torch.manual_seed(5)
    expected = torch.rand(4)
    torch.manual_seed(5)
    assert metrics.peak_flops(torch.device("cpu"), "fp32") > 0
    assert torch.equal(torch.rand(4), expected)
