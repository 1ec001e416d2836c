"""The new objectives train in several processes like the others: a BERT encoder (whose pooler nothing reads),
ELECTRA's pair of models, and a student beside its frozen teacher."""

from __future__ import annotations

import pytest
import torch

from workbench.compress import every_other_layer
from workbench.models import ModelBundle, load_model
from workbench.training import DistributedTrainer, TrainConfig
from workbench.training.checkpoint import latest_checkpoint

LABELLED = [(f"a fine happy film {i}", "positive") for i in range(8)] + [
    (f"a dull sad film {i}", "negative") for i in range(8)
]


def _bert_encoder(tokenizer) -> ModelBundle:
    """A classic BERT encoder (BertModel: with a pooler) at the tiny sizes, on the tiny models' tokenizer."""
    import transformers

    config = transformers.BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    return ModelBundle(transformers.BertModel(config), tokenizer, "encoder", "tiny-classic-bert", "test")


def _config(folder) -> TrainConfig:
    return TrainConfig(max_steps=2, batch_size=4, block_size=32, max_length=32, log_every=1, progress=False,
                       output_dir=str(folder))  # fmt: skip


@pytest.mark.parametrize("task", ["next-sentence", "replaced-token"])
def test_a_bert_encoder_trains_an_objective_in_two_processes_and_gets_its_head_back(
    tiny_bert, tiny_texts, tmp_path, task
):
    bundle = _bert_encoder(tiny_bert.tokenizer)
    pooler = bundle.model.pooler.dense.weight.detach().clone()
    run = DistributedTrainer(bundle, task, tiny_texts * 2, config=_config(tmp_path), num_processes=2)
    history = run.fit()
    assert run.state.status == "finished" and len(history.losses()) == 2
    saved = load_model(latest_checkpoint(tmp_path / "checkpoints"))
    assert list(saved.heads) == [task]
    for key, value in saved.heads[task].state_dict().items():  # the kernel's bundle holds the trained head
        torch.testing.assert_close(bundle.heads[task].state_dict()[key], value)
    assert torch.equal(bundle.model.pooler.dense.weight, pooler)  # nothing reads the pooler: frozen, not trained


def test_a_student_distils_in_two_processes_beside_its_frozen_teacher(make_tiny, tmp_path):
    teacher = make_tiny("tiny-bert", kind="classifier", label_names=["negative", "positive"])
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    student = every_other_layer(teacher)
    run = DistributedTrainer(student, "distill", LABELLED, config=_config(tmp_path), num_processes=2, teacher=teacher)
    history = run.fit()
    assert run.state.status == "finished" and len(history.losses()) == 2
    assert {"soft_loss", "hard_loss"} <= set(history.train[-1])
    for key, value in teacher.model.state_dict().items():  # the teacher taught and did not learn
        assert torch.equal(value, before[key]), key
    saved = load_model(latest_checkpoint(tmp_path / "checkpoints"))
    for key, value in saved.model.state_dict().items():  # the kernel's student holds the trained weights
        torch.testing.assert_close(student.model.state_dict()[key], value)
