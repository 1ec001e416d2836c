"""Sites: named hook points on the real module tree of each architecture, hooks that always go away."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest
import torch
import transformers

from workbench.errors import ProbeError
from workbench.explain.activations import record
from workbench.explain.sites import SITE_KINDS, Site, hooked, list_sites, parse_sites, site_map, start_at

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
    if arch == "falcon (layers return tuples)":
        config = transformers.FalconConfig(hidden_size=16, new_decoder_architecture=False, **SMALL)
        return transformers.FalconForCausalLM(config).eval()
    if arch == "bert":
        return transformers.BertForMaskedLM(transformers.BertConfig(hidden_size=16, **SMALL)).eval()
    ids = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "cls_token_id": 1, "sep_token_id": 2}
    return transformers.ModernBertForMaskedLM(transformers.ModernBertConfig(hidden_size=16, **SMALL, **ids)).eval()


ARCHITECTURES = ["llama (GQA)", "gpt-2", "falcon (layers return tuples)", "bert", "modernbert"]
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


def test_a_writer_changes_the_output(model):
    found = site_map(model)
    with torch.no_grad():
        plain = model(input_ids=IDS).logits
        with hooked(model, {Site("resid_post", found.num_layers - 1): torch.zeros_like}):
            zeroed = model(input_ids=IDS).logits
    assert not torch.allclose(plain, zeroed)


def test_a_pre_norm_layer_adds_its_attention_and_mlp_outputs_to_the_stream():
    model = _build("llama (GQA)")
    kept: dict[str, torch.Tensor] = {}
    readers = [
        (Site(k, 0), lambda x, k=k: kept.__setitem__(k, x.clone()))
        for k in ("resid_pre", "attn_out", "mlp_out", "resid_post")
    ]
    with torch.no_grad(), hooked(model, readers):
        model(input_ids=IDS)
    assert torch.allclose(kept["resid_pre"] + kept["attn_out"] + kept["mlp_out"], kept["resid_post"], atol=1e-6)


def test_writers_fire_only_in_the_thread_that_hooked_them():
    model = _build("llama (GQA)")
    with torch.no_grad():
        plain = model(input_ids=IDS).logits
        other: list[torch.Tensor] = []
        with hooked(model, {Site("resid_post", 1): torch.zeros_like}), start_at(model, 1, torch.zeros(1, 7, 16)):
            worker = threading.Thread(target=lambda: other.append(model(input_ids=IDS).logits))
            worker.start()
            worker.join()
            here = model(input_ids=IDS).logits
    assert torch.equal(other[0], plain)  # e.g. a training step in the dashboard's thread
    assert not torch.allclose(here, plain)


def test_the_site_map_does_not_keep_a_model_alive():
    model = _build("gpt-2")
    site_map(model)
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None


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

    before = _hooks_on(model)
    with pytest.raises(ValueError, match="broken"), hooked(model, {Site("mlp_out", 0): broken}), torch.no_grad():
        model(input_ids=IDS)
    assert _hooks_on(model) == before


def test_starting_at_a_layer_from_cached_activations_gives_the_same_logits(model):
    kept: dict[str, torch.Tensor] = {}
    own_forward = dict(model.named_modules())[site_map(model).layers_name][0].__dict__.get("forward")
    with torch.no_grad():
        with hooked(model, {Site("resid_pre", 1): lambda x: kept.__setitem__("entering 1", x.clone())}):
            plain = model(input_ids=IDS).logits
        with start_at(model, 1, kept["entering 1"].expand(3, -1, -1)):
            started = model(input_ids=IDS.expand(3, -1)).logits
        again = model(input_ids=IDS).logits  # the skipped layer's own forward is back
    assert torch.allclose(started, plain.expand(3, -1, -1), atol=1e-5)
    assert torch.equal(again, plain)
    assert dict(model.named_modules())[site_map(model).layers_name][0].__dict__.get("forward") is own_forward


def test_sites_are_named_and_parsed_back(tiny_gpt):
    found = site_map(tiny_gpt.model)
    assert parse_sites(tiny_gpt.model, "head.1") == [Site("head", 1, h) for h in range(found.num_heads)]
    assert parse_sites(tiny_gpt.model, ["resid_post.0", Site("embed"), "resid_post.0"]) == [
        Site("resid_post", 0),
        Site("embed"),
    ]
    assert [s.site.name for s in list_sites(tiny_gpt, ["resid_post"])] == [
        f"resid_post.{i}" for i in range(found.num_layers)
    ]
    assert {s.site.kind for s in list_sites(tiny_gpt)} == set(SITE_KINDS)


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
