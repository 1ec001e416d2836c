"""Generation you can inspect: every new token with its probability and the tokens it beat.

Example::

    out = generate(load_model("smollm2-135m"), "The capital of France is", max_new_tokens=8, seed=0)
    print(out)                       # the text, then each token with its probability
    out.steps[0].alternatives        # [(' Paris', 0.77), (' a', 0.04), ...]
    attribute(bundle, out.context(0), out.steps[0].token_id)   # why that token
    steered = generate(bundle, "I think the movie was", steer=(vector, 4.0))   # see steering.py
    print(steered)                   # the steered text beside the plain one, from the same seed
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from workbench.errors import ProbeError
from workbench.explain.budget import memory_budget, require
from workbench.explain.footprint import FLOAT, ModelShape
from workbench.explain.inputs import accepts_argument, check_text, display_token, encode, inference
from workbench.explain.sites import hooked
from workbench.explain.steering import steering_writer

if TYPE_CHECKING:
    from workbench.explain.steering import SteeringVector
    from workbench.models import ModelBundle

__all__ = ["GeneratedToken", "GenerationResult", "generate"]


@dataclass
class GeneratedToken:
    """One generated token: its text, id, the model's probability for it, and the model's top alternatives."""

    token: str
    token_id: int
    probability: float  # under the model's own distribution (temperature 1, no filtering)
    alternatives: list[tuple[str, float]]  # the top tokens at this step, with their probabilities

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "token_id": self.token_id,
            "probability": self.probability,
            "alternatives": [[t, p] for t, p in self.alternatives],
        }


@dataclass
class GenerationResult:
    """The prompt, the tokens generated after it, and how the sampling was set.

    A steered generation also holds ``steer`` (layer, coefficient, the vector's norm and prompts) and
    ``plain``: the generation from the same prompt and seed without the steering.
    """

    model: str
    prompt: str
    steps: list[GeneratedToken] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    stopped_by: str = "max_new_tokens"  # or "end of text"
    steer: dict[str, Any] | None = None
    plain: GenerationResult | None = None

    @property
    def completion(self) -> str:
        return "".join(s.token for s in self.steps)

    @property
    def text(self) -> str:
        """Prompt and completion together: hand it to ``attention`` to see how the model read it."""
        return self.prompt + self.completion

    def context(self, step: int) -> str:
        """The text the model saw when it chose token ``step``: hand it to ``attribute`` with that token's id."""
        return self.prompt + "".join(s.token for s in self.steps[:step])

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "prompt": self.prompt,
            "completion": self.completion,
            "steps": [s.to_dict() for s in self.steps],
            "settings": self.settings,
            "stopped_by": self.stopped_by,
            "steer": self.steer,
            "plain": self.plain.to_dict() if self.plain is not None else None,
        }

    def __str__(self) -> str:
        if self.plain is not None and self.steer is not None:
            return _side_by_side(self, self.plain, self.steer)
        lines = [self.text, ""]
        for i, s in enumerate(self.steps):
            alts = "  ".join(f"{t!r} {p:.2f}" for t, p in s.alternatives[:3])
            lines.append(f"{i:3d} {s.token!r:>16} p={s.probability:.3f}   top: {alts}")
        return "\n".join(lines)


def _side_by_side(steered: GenerationResult, plain: GenerationResult, steer: dict[str, Any]) -> str:
    """Both texts, then each step's token and probability in two columns: steered, plain."""
    lines = [
        f"steered (layer {steer['layer']}, {steer['coefficient']:+g} x a vector of norm {steer['norm']:.3g}):",
        steered.text,
        "plain (same seed):",
        plain.text,
        "",
        f"{'step':>4}  {'steered':>18} {'p':>6}   {'plain':>18} {'p':>6}",
    ]
    for i in range(max(len(steered.steps), len(plain.steps))):
        cells = []
        for run in (steered, plain):
            step = run.steps[i] if i < len(run.steps) else None
            cells.append(f"{step.token!r:>18} {step.probability:6.3f}" if step else f"{'':>18} {'':>6}")
        lines.append(f"{i:4d}  {cells[0]}   {cells[1]}".rstrip())
    return "\n".join(lines)


def _check(name: str, value: Any, low: float, high: float | None = None, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ProbeError(f"{name} must be {'an integer' if integer else 'a number'} {bound}, got {value!r}.")


def generate(
    bundle: ModelBundle,
    prompt: str,
    max_new_tokens: int = 20,
    *,
    temperature: float = 1.0,
    top_k: int = 50,
    top_p: float = 1.0,
    seed: int | None = 0,
    alternatives: int = 5,
    steer: tuple[SteeringVector, float] | None = None,
    memory_mb: int | None = None,
) -> GenerationResult:
    """Sample up to ``max_new_tokens`` after ``prompt``; each step keeps its probability and alternatives.

    ``temperature`` 0 is greedy; ``top_k`` 0 and ``top_p`` 1 turn those filters off; one ``seed``
    gives one text. Stops at the end-of-text token. ``memory_mb`` is the call's budget (default: the
    kernel's, ``set_memory_budget``). Raises ``ProbeError`` for a model that is not a causal LM, empty
    prompts, out-of-range settings, or a prompt that fills the model's positions; ``MemoryBudgetError``
    before generating when the key/value cache, the prompt's forward and the kept probabilities
    would not fit the budget.

    ``steer=(vector, coefficient)`` adds ``coefficient × vector`` (a :class:`SteeringVector`) to the
    residual stream leaving the vector's layer at every position, and returns the steered generation
    with the plain one (same seed) as its ``plain``. Raises ``ProbeError`` for a vector from another
    model, a layer the model lacks, or a coefficient that is not a finite number.
    """
    prompt = check_text(prompt)
    memory_mb = memory_budget(memory_mb)
    if bundle.kind != "causal-lm":
        raise ProbeError(f"generate needs a causal language model; {bundle.name} is a {bundle.kind} model.")
    _check("max_new_tokens", max_new_tokens, 1, integer=True)
    _check("temperature", temperature, 0)
    _check("top_k", top_k, 0, integer=True)
    _check("top_p", top_p, 0, 1)
    _check("alternatives", alternatives, 1, integer=True)
    if top_p == 0:
        raise ProbeError("top_p must be above 0 (1 keeps every token).")
    steering = steering_writer(bundle, steer) if steer is not None else None
    enc = encode(bundle, prompt)
    room = bundle.max_positions - enc["input_ids"].shape[1]
    if room < 1:
        raise ProbeError(f"The prompt fills all {bundle.max_positions} positions of {bundle.name}; shorten it.")
    steps = min(max_new_tokens, room)
    # only the last position's logits, where the model can skip the others
    keep = {"logits_to_keep": 1} if accepts_argument(bundle.model, "logits_to_keep") else {}
    length = enc["input_ids"].shape[1]
    require(
        _generation_bytes(ModelShape.of(bundle.model), length, steps, alternatives, all_logits=not keep),
        memory_mb,
        f"generating {steps:,} tokens after a prompt of {length:,} tokens with {bundle.name}",
        "a shorter prompt or fewer max_new_tokens",
    )
    settings = {
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "top_k": top_k,
        "top_p": top_p,
        "seed": seed,
    }
    plain = _sample_steps(
        bundle, prompt, enc["input_ids"], steps=steps, settings=settings, alternatives=alternatives, keep=keep
    )
    if steering is None:
        return plain
    site, writer, description = steering
    with hooked(bundle.model, [(site, writer)]):  # on the prompt's forward and on every generated token's
        steered = _sample_steps(
            bundle, prompt, enc["input_ids"], steps=steps, settings=settings, alternatives=alternatives, keep=keep
        )
    steered.steer, steered.plain = description, plain
    return steered


def _sample_steps(
    bundle: ModelBundle,
    prompt: str,
    ids: torch.Tensor,
    *,
    steps: int,
    settings: dict[str, Any],
    alternatives: int,
    keep: dict[str, int],
) -> GenerationResult:
    """Up to ``steps`` tokens after ``ids`` ``(1, n)``, sampled as ``settings`` say from a generator seeded anew."""
    tok = bundle.tokenizer
    temperature, top_k, top_p, seed = (settings[k] for k in ("temperature", "top_k", "top_p", "seed"))
    generator = torch.Generator(device="cpu")
    if seed is not None:
        generator.manual_seed(int(seed))
    result = GenerationResult(bundle.name, prompt, settings=dict(settings))
    cache = None
    # transformers 5.24 renamed the key/value cache from `past_key_values` to `cache` (the old name
    # warns and goes in 5.40); models that still take the old name get it
    cache_name = "cache" if accepts_argument(bundle.model, "cache") else "past_key_values"
    with inference(bundle.model):
        for _ in range(steps):
            out = bundle.model(input_ids=ids, use_cache=True, **{cache_name: cache}, **keep)
            cache = getattr(out, cache_name)
            logits = out.logits[0, -1].float()  # (vocab,)
            probs = logits.softmax(-1)
            choice = _sample(logits, probs, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
            top_values, top_ids = probs.topk(min(alternatives, probs.shape[-1]))
            result.steps.append(
                GeneratedToken(
                    display_token(tok, choice),
                    choice,
                    float(probs[choice]),
                    [(display_token(tok, int(i)), float(v)) for v, i in zip(top_values, top_ids, strict=True)],
                )
            )
            if tok.eos_token_id is not None and choice == tok.eos_token_id:
                result.stopped_by = "end of text"
                break
            ids = torch.tensor([[choice]], device=bundle.device)
    if len(result.steps) < settings["max_new_tokens"] and result.stopped_by == "max_new_tokens":
        result.stopped_by = "the model's last position"
    return result


def _generation_bytes(shape: ModelShape, prompt: int, steps: int, alternatives: int, *, all_logits: bool) -> int:
    """The key/value cache of prompt and new tokens, the prompt's forward (one layer's activations and
    its logits: the last position's, or every position's where the model cannot skip them), sampling's
    copies of one step's scores, and each step's kept probabilities."""
    cache = shape.kv_cache_bytes(prompt + steps)
    forward = shape.layer_bytes(prompt) + shape.logits_bytes(prompt if all_logits else 1)
    sampling = 8 * FLOAT * shape.vocab  # scores, their sort, cumulative sums and masks
    kept = steps * (alternatives + 1) * 128  # (token text, probability) pairs as Python objects
    return cache + forward + sampling + kept


def _sample(
    logits: torch.Tensor,
    probs: torch.Tensor,
    *,
    temperature: float,
    top_k: int,
    top_p: float,
    generator: torch.Generator,
) -> int:
    if temperature == 0:
        return int(probs.argmax())
    scores = logits / temperature
    if top_k:
        kth = scores.topk(min(top_k, scores.shape[-1])).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1:
        sorted_scores, order = scores.sort(descending=True)
        cumulative = sorted_scores.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_scores.softmax(-1) >= top_p  # keep the smallest set reaching top_p
        scores = scores.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    weights = scores.softmax(-1).cpu()
    return int(torch.multinomial(weights, 1, generator=generator))
