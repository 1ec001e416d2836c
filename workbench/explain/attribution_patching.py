"""Attribution patching: activation patching's first-order approximation, every site at once.

Nanda's attribution patching (2023) replaces the many patched runs of :func:`~workbench.explain.patching.patch`
with one forward and one backward of the base run: the effect of putting the source activation ``a'``
at a site where the base run has ``a`` is estimated as ``grad · (a' - a)``, the metric's gradient there
times the change, summed over the activation's width (and over the patched positions, for a head).
The map is normalised like patching (0: the corrupted run, 1: the clean one). It is exact where the
metric depends linearly on the site, and an estimate elsewhere: ``against=`` a patching result of the
same sites sets the Pearson correlation of the two maps on the result.

Example::

    full = patch(bundle, clean, corrupted, (" Paris", " Rome"), sites="head")
    fast = attribution_patching(bundle, clean, corrupted, (" Paris", " Rome"), sites="head", against=full)
    fast.pearson_r        # how far the first-order map follows the real one
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from workbench.errors import ProbeError
from workbench.explain.attribution.objective import evaluation
from workbench.explain.budget import require
from workbench.explain.footprint import FLOAT, ModelShape
from workbench.explain.inputs import accepts_argument, inference
from workbench.explain.metrics import BoundMetric, bind_metric
from workbench.explain.patch_inputs import PatchInputs, SiteGrid, check_choice, pair_result, patch_inputs, site_grid
from workbench.explain.patched_runs import CachedRun, cached_run
from workbench.explain.patching import embed_note, grid_jobs, grid_values
from workbench.explain.patching_result import DIRECTIONS, Direction, PatchingResult, normalised_effect
from workbench.explain.sites import Site, Writer

if TYPE_CHECKING:
    from workbench.models import ModelBundle

__all__ = ["attribution_patching", "pearson"]


def attribution_patching(
    bundle: ModelBundle,
    clean: str,
    corrupted: str,
    metric: object,
    *,
    sites: object = "resid_post",
    positions: object = None,
    direction: Direction = "denoise",
    read_position: int | None = None,
    against: PatchingResult | None = None,
    memory_mb: int | None = None,
) -> PatchingResult:
    """The first-order estimate of patching each site at each position (each head at all ``positions`` for
    ``sites="head"``), as a :class:`PatchingResult` with ``method="attribution_patching"``; arguments as in
    :func:`~workbench.explain.patching.patch`. ``against`` (the result of ``patch`` with the same texts,
    metric, direction, read position, sites and positions) sets ``pearson_r``.

    Raises ``ProbeError`` with a sentence for a missing corrupted text, texts of different lengths, an
    unknown site, a metric that is not a number or the same on both runs, or an ``against`` result that
    differs in any of the above (one sentence naming the first difference); ``MemoryBudgetError`` (before the
    forward) when the backward pass cannot fit ``memory_mb``.
    """
    if corrupted is None:
        raise ProbeError(
            "Attribution patching needs a corrupted text to compare with; for noise on a subject use "
            "patch(..., corrupted=None, subject=...)."
        )
    direction = check_choice(direction, "direction", DIRECTIONS)
    pair = patch_inputs(bundle, clean, corrupted, read_position)
    assert pair.corrupted_ids is not None
    model = bundle.model
    bound = bind_metric(bundle, metric)
    n = pair.length
    grid = site_grid(model, sites, n, positions)
    if against is not None:
        _check_against(against, pair, grid, bound.name, direction)
    shape = ModelShape.of(model)
    width = shape.head_dim if grid.kind == "head" else shape.hidden
    require(
        shape.row_bytes(n, gradients=True) + 2 * shape.logits_bytes(n) + 4 * FLOAT * len(grid.sites) * n * width,
        memory_mb,
        f"attribution patching of {len(grid.sites)} sites over {n} tokens of {bundle.name}",
        "fewer sites or a shorter text",
    )
    base_ids, source_ids = (
        (pair.corrupted_ids, pair.clean_ids) if direction == "denoise" else (pair.clean_ids, pair.corrupted_ids)
    )
    with inference(model):
        source = cached_run(model, source_ids, bound, pair.read, grid.sites)
    base, gradients = _base_with_gradients(bundle, base_ids, pair.read, bound, grid.sites)
    clean_metric, corrupted_metric = (
        (source.metric, base.metric) if direction == "denoise" else (base.metric, source.metric)
    )
    normalised_effect(np.zeros(1), clean_metric, corrupted_metric)  # no gap: one sentence
    base_name = "corrupted" if direction == "denoise" else "clean"
    jobs = grid_jobs(grid)
    estimates = np.zeros(len(jobs))
    for index, job in enumerate(jobs):
        at = list(job.positions)
        change = (source.sites[job.site][at] - base.sites[job.site][at]).double()  # (positions, width)
        estimates[index] = base.metric + float((gradients[job.site][at].double() * change).sum())
    values = normalised_effect(grid_values(grid, jobs, estimates), clean_metric, corrupted_metric)
    note = f"first-order estimate from one forward and one backward of the {base_name} run{embed_note(grid.kind)}."
    result = pair_result(
        bundle,
        pair,
        grid,
        values,
        method="attribution_patching",
        metric=bound.name,
        clean_metric=clean_metric,
        corrupted_metric=corrupted_metric,
        direction=direction,
        note=note,
    )
    if against is not None:
        result.pearson_r = pearson(values, against.values)
    return result


def _base_with_gradients(
    bundle: ModelBundle, inputs: dict[str, torch.Tensor], read: int, metric: BoundMetric, sites: list[Site]
) -> tuple[CachedRun, dict[Site, torch.Tensor]]:
    """The base run, and the metric's gradient with respect to each site's activation ``(n, width)``.

    Each site gets a zero added to its activation (the value stays bit for bit); the gradient with respect
    to that zero is the total derivative of the metric there, through every later site."""
    model = bundle.model
    zeros: dict[Site, torch.Tensor] = {}

    def adder(site: Site) -> Writer:
        def add(x: torch.Tensor) -> torch.Tensor:
            zeros[site] = torch.zeros_like(x, requires_grad=True)  # (1, n, width)
            return x + zeros[site]

        return add

    extra = {"use_cache": False} if accepts_argument(model, "use_cache") else {}
    kept: dict[str, torch.Tensor] = {}

    def measured(logits: torch.Tensor) -> torch.Tensor:
        kept["metric"] = metric(logits)
        return kept["metric"]

    with evaluation(model), torch.enable_grad():
        base = cached_run(
            model,
            {**inputs, **extra},
            measured,
            read,
            sites,
            writers=[(site, adder(site)) for site in sites],
        )
        grads = torch.autograd.grad(kept["metric"].sum(), [zeros[s] for s in sites], allow_unused=True)
    gradients = {
        s: (g[0].detach() if g is not None else torch.zeros_like(zeros[s][0]))
        for s, g in zip(sites, grads, strict=True)
    }
    return base, gradients


def _check_against(against: object, pair: PatchInputs, grid: SiteGrid, metric: str, direction: Direction) -> None:
    """Refuse, with one sentence for the first difference, an ``against`` map that is not patching of the same
    texts, metric, direction, read position, sites and patched positions: its r would compare unlike maps."""
    if not isinstance(against, PatchingResult):
        raise ProbeError(
            f"against= takes the PatchingResult of patch(...) on the same sites, got {type(against).__name__}."
        )
    if against.method != "patching":
        raise ProbeError(
            f"against= must be a result of patch(...) with a corrupted text (method 'patching'), got a "
            f"{against.method!r} result."
        )
    if (against.clean, against.corrupted) != (pair.clean, pair.corrupted):
        raise ProbeError(
            "against= must be patching of the same clean and corrupted texts; "
            f"it patched {against.clean!r} with {against.corrupted!r}."
        )
    if against.direction != direction:
        raise ProbeError(
            f"against= must patch in the same direction: it was made with direction={against.direction!r}, this "
            f"call uses direction={direction!r}."
        )
    if against.metric != metric:
        raise ProbeError(
            f"against= must measure the same metric: it measured {against.metric}, this call measures {metric}."
        )
    if against.read_position != pair.read:
        raise ProbeError(
            f"against= must read the metric at the same position: it read position {against.read_position}, "
            f"this call reads position {pair.read}."
        )
    if (against.kind, against.layers, against.columns) != (grid.kind, grid.layers, grid.columns):
        raise ProbeError(
            f"against= must map the same sites: it holds {against.kind} at layers {against.layers}, columns "
            f"{against.columns}; this call maps {grid.kind} at layers {grid.layers}, columns {grid.columns}."
        )
    if grid.kind == "head" and against.patched_positions != grid.positions:
        raise ProbeError(
            f"against= must patch each head at the same positions: it patched positions "
            f"{against.patched_positions}, this call patches positions {grid.positions}."
        )


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson's r of two maps over the cells both hold; None when fewer than two or one map is constant."""
    both = np.isfinite(a) & np.isfinite(b)
    x, y = a[both].astype(np.float64), b[both].astype(np.float64)
    if x.size < 2 or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])
