"""Sites: named hook points on the real module tree of each architecture, hooks that always go away."""

from __future__ import annotations

import pytest
import torch
import transformers

from workbench.errors import ProbeError
from workbench.explain.activations import record
from workbench.explain.sites import SITE_KINDS, Site, hooked, parse_sites, site_map, sites, start_at

SMALL = {"vocab_size": 60, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 32}


def _build(arch: str) -> torch.nn.Module:
    """A small randomly initialised model of each architecture the sites support."""
    torch.manual_seed(0)
    if arch == "llama (GQA)":
        config = transformers.LlamaConfig(hidden_size=16, num_key_value_heads=2, **SMALL)
        return transformers.LlamaForCausalLM(config).eval()
    if arch == "gpt-2":
        config = transformers.GPT2Config(vocab_size=60, n_embd=16, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0)
        return transformers.GPT2LMHeadModel(config).eval()
    if arch == "bert":
        return transformers.BertForMaskedLM(transformers.BertConfig(hidden_size=16, **SMALL)).eval()
    ids = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "cls_token_id": 1, "sep_token_id": 2}
    return transformers.ModernBertForMaskedLM(transformers.ModernBertConfig(hidden_size=16, **SMALL, **ids)).eval()


ARCHITECTURES = ["llama (GQA)", "gpt-2", "bert", "modernbert"]
IDS = torch.tensor([[5, 17, 3, 42, 8, 23, 11]])


@pytest.fixture(scope="module", params=ARCHITECTURES)
def model(request: pytest.FixtureRequest) -> torch.nn.Module:
    return _build(request.param)


def _hooks_on(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_reading_every_site_leaves_the_logits_bit_identical(model):
    found = site_map(model)
    kept: dict[str, torch.Tensor] = {}
    readers = [(s, lambda x, name=s.name: kept.__setitem__(name, x.clone())) for s in found.all_sites()]
    with torch.no_grad():
        plain = model(input_ids=IDS).logits
        with hooked(model, readers):
            read = model(input_ids=IDS).logits
    assert torch.equal(plain, read)
    assert len(kept) == 1 + found.num_layers * (4 + found.num_heads)
    # the stream leaving a layer is the stream entering the next; the heads side by side make the projection's input
    assert torch.equal(kept["resid_post.0"], kept["resid_pre.1"])
    assert kept["head.1.3"].shape == (1, IDS.shape[1], found.head_dim)
    projection = model.get_submodule(found.module_name(Site("attn_out", 1)))
    heads = torch.cat([kept[f"head.1.{h}"] for h in range(found.num_heads)], dim=-1)
    with torch.no_grad():
        assert torch.allclose(projection(heads), kept["attn_out.1"], atol=1e-6)


def test_a_writer_changes_the_output_and_the_residual_adds_up(model):
    found = site_map(model)
    with torch.no_grad():
        plain = model(input_ids=IDS).logits
        with hooked(model, {Site("resid_post", found.num_layers - 1): torch.zeros_like}):
            zeroed = model(input_ids=IDS).logits
    assert not torch.allclose(plain, zeroed)


def test_no_hook_remains_after_an_exception_inside_the_block(model):
    before = _hooks_on(model)
    with (
        pytest.raises(RuntimeError, match="inside"),
        hooked(model, [(s, lambda x: None) for s in site_map(model).all_sites()]),
    ):
        assert _hooks_on(model) > before
        raise RuntimeError("raised inside the block")
    assert _hooks_on(model) == before


def test_a_writer_that_raises_leaves_no_hook_behind(model):
    def broken(x: torch.Tensor) -> None:
        raise ValueError("broken writer")

    with pytest.raises(ValueError, match="broken"), hooked(model, {Site("mlp_out", 0): broken}), torch.no_grad():
        model(input_ids=IDS)
    assert _hooks_on(model) == 0


def test_starting_at_a_layer_from_cached_activations_gives_the_same_logits(model):
    kept: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        with hooked(model, {Site("resid_pre", 1): lambda x: kept.__setitem__("entering 1", x.clone())}):
            plain = model(input_ids=IDS).logits
        with start_at(model, 1, kept["entering 1"].expand(3, -1, -1)):
            started = model(input_ids=IDS.expand(3, -1)).logits
        again = model(input_ids=IDS).logits  # the skipped layer's own forward is back
    assert torch.allclose(started, plain.expand(3, -1, -1), atol=1e-5)
    assert torch.equal(again, plain)


def test_sites_are_named_and_parsed_back(tiny_gpt):
    found = site_map(tiny_gpt.model)
    assert parse_sites(tiny_gpt.model, "head.1") == [Site("head", 1, h) for h in range(found.num_heads)]
    assert parse_sites(tiny_gpt.model, ["resid_post.0", Site("embed"), "resid_post.0"]) == [
        Site("resid_post", 0),
        Site("embed"),
    ]
    assert [s.site.name for s in sites(tiny_gpt, ["resid_post"])] == [
        f"resid_post.{i}" for i in range(found.num_layers)
    ]
    assert {s.site.kind for s in sites(tiny_gpt)} == set(SITE_KINDS)


@pytest.mark.parametrize(
    "spec, words",
    [("resid_post.9", "out of range"), ("head.0.7", "out of range"), ("mlp.0", "Unknown site"), ([], "non-empty")],
)
def test_bad_site_names_get_a_sentence(tiny_gpt, spec, words):
    with pytest.raises(ProbeError, match=words):
        parse_sites(tiny_gpt.model, spec)


def test_record_returns_each_sites_activation_per_token(tiny_bert):
    text = "the cat sat on the mat"
    acts = record(tiny_bert, text, ["resid_post", "head.0.1"])
    n = len(acts.tokens.text)
    assert acts["resid_post.1"].shape == (n, tiny_bert.config.hidden_size)
    assert acts.stack("resid_post").shape == (2, n, tiny_bert.config.hidden_size)
    with torch.no_grad():
        enc = tiny_bert.tokenizer(text, return_tensors="pt")
        hidden = tiny_bert.model(**enc, output_hidden_states=True).hidden_states
    # BERT-style hidden_states[i + 1] is layer i's output: the same tensor the hook read
    assert torch.equal(torch.from_numpy(acts["resid_post.0"]), hidden[1][0])
    with pytest.raises(ProbeError, match="not recorded"):
        acts["mlp_out.0"]
