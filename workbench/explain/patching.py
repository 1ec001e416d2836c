"""Activation patching and causal tracing: which activations carry what the model answers.

``patch(bundle, clean, corrupted, metric)`` runs the corrupted text once per site and position with
that one activation taken from the clean run (``direction="denoise"``), or the clean text with the
corrupted activation (``"noise"``), and maps the metric, normalised so that 0 is the corrupted run
and 1 the clean one. With ``corrupted=None`` it is causal tracing (Meng et al. 2022, "Locating and
Editing Factual Associations in GPT"): the corrupted run is the clean text with Gaussian noise on the
embeddings of the ``subject`` tokens, ``noise`` times the standard deviation of the embedding matrix,
and every value is averaged over ``samples`` seeded draws.

The fast route puts many patched copies in one forward, starts each at the layer it patches from the
cached run's residual stream, and computes the output head only where the metric reads; the naive
route runs one full forward per site and gives the same numbers (to float rounding).

Example::

    result = patch(bundle, "The Eiffel Tower is located in the city of",
                   "The Colosseum Tower is located in the city of", (" Paris", " Rome"))
    result.top(3)          # [(layer, position, effect), ...]
    tracing = patch(bundle, "The Eiffel Tower is located in the city of", None, (" Paris", " Rome"),
                    subject="Eiffel Tower")
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import torch

from workbench.errors import ProbeError
from workbench.explain.budget import budget_bytes, require
from workbench.explain.footprint import FLOAT, ModelShape
from workbench.explain.inputs import inference
from workbench.explain.metrics import bind_metric
from workbench.explain.patch_inputs import (
    SiteGrid,
    check_choice,
    pair_result,
    patch_inputs,
    site_grid,
    subject_positions,
)
from workbench.explain.patched_runs import (
    ROW_TOKENS,
    PatchJob,
    PatchPlan,
    cached_run,
    patch_row_bytes,
    run_fast,
    run_naive,
)
from workbench.explain.patching_result import DIRECTIONS, Direction, PatchingResult, normalised_effect

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["ROUTES", "Route", "embed_note", "grid_jobs", "grid_values", "patch"]

Route = Literal["fast", "naive"]
ROUTES: tuple[Route, ...] = get_args(Route)


def patch(
    bundle: ModelBundle,
    clean: str,
    corrupted: str | None,
    metric: object,
    *,
    sites: object = "resid_post",
    positions: object = None,
    direction: Direction = "denoise",
    subject: object = None,
    samples: int = 10,
    noise: float = 3.0,
    seed: int = 0,
    route: Route = "fast",
    batch_size: int | None = None,
    read_position: int | None = None,
    memory_mb: int | None = None,
) -> PatchingResult:
    """The effect of patching each site at each position: a :class:`PatchingResult` of ``(layers, positions)``,
    or ``(layers, heads)`` for ``sites="head"`` (each head patched at all ``positions`` at once).

    ``metric`` is a token (its probability), a pair of tokens (their logit difference), a
    :class:`~workbench.explain.metrics.Metric` or a function of the logits, read at the last position of a
    causal LM, the mask of a masked LM, or ``read_position``. ``sites`` is a kind (every layer) or a list
    of sites of one kind. ``corrupted=None`` is causal tracing of ``subject`` (a substring of the clean text
    or token positions). ``memory_mb`` bounds the batch (default: the kernel's budget).

    Raises ``ProbeError`` with a sentence for texts that tokenise to different lengths (naming the tokens
    that differ), an unknown site, a metric that is not a number or does not differ between the two runs,
    and any option out of range; ``MemoryBudgetError`` (before any forward) when one patched run cannot fit.
    """
    direction = check_choice(direction, "direction", DIRECTIONS)
    chosen_route = check_choice(route, "route", ROUTES)
    pair = patch_inputs(bundle, clean, corrupted, read_position)
    tracing = corrupted is None
    if not tracing and subject is not None:
        raise ProbeError(
            "subject= is for causal tracing (corrupted=None); with a corrupted text the tokens that differ are "
            "what is compared, so leave subject out."
        )
    subject_at = subject_positions(bundle, pair, subject) if tracing else []
    draws = _positive_int(samples, "samples") if tracing else 1
    scale = _positive_float(noise, "noise")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ProbeError(f"seed must be a whole number, got {seed!r}.")
    if batch_size is not None:
        _positive_int(batch_size, "batch_size")
    model = bundle.model
    bound = bind_metric(bundle, metric)
    n = pair.length
    grid = site_grid(model, sites, n, positions)
    jobs = grid_jobs(grid, draws)
    size = _batch_size(
        bundle, grid, n=n, samples=draws, jobs=len(jobs), batch_size=batch_size, route=chosen_route, memory_mb=memory_mb
    )
    embedding_std = 0.0
    with inference(model):
        clean_run = cached_run(model, pair.clean_ids, bound, pair.read, grid.sites)
        if tracing:
            embedding_std = float(model.get_input_embeddings().weight.float().std())  # type: ignore[operator]
            noises: list[torch.Tensor | None] = _noises(
                model, n, subject_at, samples=draws, std=scale * embedding_std, seed=seed
            )
            corrupted_runs = [cached_run(model, pair.clean_ids, bound, pair.read, grid.sites, noise=x) for x in noises]
        else:
            assert pair.corrupted_ids is not None
            noises = [None]
            corrupted_runs = [cached_run(model, pair.corrupted_ids, bound, pair.read, grid.sites)]
        corrupted_metric = float(np.mean([run.metric for run in corrupted_runs]))
        normalised_effect(np.zeros(1), clean_run.metric, corrupted_metric)  # no gap: one sentence, before the runs
        if direction == "denoise":
            base_ids = pair.clean_ids if tracing else pair.corrupted_ids
            assert base_ids is not None
            plan = PatchPlan(model, bound, base_ids, pair.read, corrupted_runs, [clean_run] * draws, noises)
        else:
            plan = PatchPlan(
                model, bound, pair.clean_ids, pair.read, [clean_run] * draws, corrupted_runs, [None] * draws
            )
        raw = run_fast(plan, jobs, size) if chosen_route == "fast" else run_naive(plan, jobs)
    values = normalised_effect(grid_values(grid, jobs, raw), clean_run.metric, corrupted_metric)
    note = f"{len(jobs)} patched runs ({chosen_route} route)"
    if tracing:
        note += (
            f"; Gaussian noise of {scale:g} x the embedding standard deviation ({embedding_std:.3g}) on the "
            f"subject's {len(subject_at)} tokens, {draws} draws from seed {seed}"
        )
    if grid.kind == "head":
        note += f"; each head patched at {len(grid.positions)} of {n} positions"
    note += embed_note(grid.kind)
    return pair_result(
        bundle,
        pair,
        grid,
        values,
        method="causal_tracing" if tracing else "patching",
        metric=bound.name,
        clean_metric=clean_run.metric,
        corrupted_metric=corrupted_metric,
        direction=direction,
        note=note + ".",
        differing=subject_at if tracing else pair.differing,
        subject=subject_at,
        samples=draws if tracing else 0,
    )


def embed_note(kind: str) -> str:
    """What a map of ``embed`` sites says about its one row: it is the embeddings, labelled layer 0."""
    return "; its one row (layer 0) is the token embeddings, before the first layer" if kind == "embed" else ""


def grid_jobs(grid: SiteGrid, samples: int = 1) -> list[PatchJob]:
    """One job per cell of the map and noise draw: a site at one position, or a head at all ``grid.positions``."""
    if grid.kind == "head":
        return [PatchJob(site, tuple(grid.positions), s) for site in grid.sites for s in range(samples)]
    return [PatchJob(site, (p,), s) for site in grid.sites for p in grid.positions for s in range(samples)]


def grid_values(grid: SiteGrid, jobs: list[PatchJob], raw: np.ndarray) -> np.ndarray:
    """The jobs' metrics laid out as the map ``(layers, columns)``, averaged over draws; NaN where no job ran."""
    total = np.zeros((len(grid.layers), len(grid.columns)))
    count = np.zeros_like(total)
    for job, value in zip(jobs, raw, strict=True):
        row = grid.layers.index(job.site.layer)
        column = grid.columns.index(job.site.head or 0) if grid.kind == "head" else grid.columns.index(job.positions[0])
        total[row, column] += value
        count[row, column] += 1
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _noises(
    model: torch.nn.Module, n: int, subject: list[int], *, samples: int, std: float, seed: int
) -> list[torch.Tensor | None]:
    """``samples`` seeded draws of Gaussian noise on the subject's embeddings, each ``(n, hidden)``."""
    weight = model.get_input_embeddings().weight  # type: ignore[operator]
    generator = torch.Generator().manual_seed(seed)
    draws = torch.randn(samples, len(subject), weight.shape[1], generator=generator) * std  # (samples, subject, hidden)
    out: list[torch.Tensor | None] = []
    for draw in draws:
        full = torch.zeros(n, weight.shape[1])
        full[subject] = draw
        out.append(full.to(device=weight.device, dtype=weight.dtype))
    return out


def _batch_size(
    bundle: ModelBundle,
    grid: SiteGrid,
    *,
    n: int,
    samples: int,
    jobs: int,
    batch_size: int | None,
    route: Route,
    memory_mb: int | None,
) -> int:
    """Rows per forward within the memory budget; ``MemoryBudgetError`` when not even one fits."""
    shape = ModelShape.of(bundle.model)
    found_width = shape.head_dim if grid.kind == "head" else shape.hidden
    runs = samples + 1
    cached = FLOAT * runs * n * ((shape.layers + 1) * shape.hidden + len(grid.sites) * found_width)
    fixed = cached + FLOAT * samples * n * shape.hidden + shape.layer_bytes(n) + shape.logits_bytes(n)
    row = patch_row_bytes(shape, n, naive=route == "naive")
    if route == "naive":
        size = 1
    elif batch_size is not None:
        size = batch_size
    else:
        fits = (budget_bytes(memory_mb) - fixed) // row
        size = int(max(1, min(fits, math.ceil(ROW_TOKENS / n), jobs)))
    require(
        fixed + size * row,
        memory_mb,
        f"patching {jobs:,} runs of {n} tokens of {bundle.name}, {size:,} at a time",
        "a smaller batch_size, fewer sites or positions, or a shorter text",
    )
    return size


def _positive_int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ProbeError(f"{name} must be a positive whole number, got {value!r}.")
    return value


def _positive_float(value: object, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ProbeError(f"{name} must be a positive number, got {value!r}.")
    return float(value)
