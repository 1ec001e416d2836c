"""Patched runs: the cached runs that patching starts from, and the two routes that run the patched copies.

A patched run is a base run (the corrupted text when denoising) with one site's activation replaced,
at some positions, by the source run's (the clean text). Each :class:`PatchJob` names the site, the
positions and which base/source pair it uses (causal tracing has one pair per noise draw).

* :func:`run_fast` puts many jobs in one forward and starts each forward at the layer it patches,
  from the base run's cached residual stream (``sites.start_at``); the output head runs only where
  the metric reads.
* :func:`run_naive` runs one full forward per job: the reference the fast route must equal. A naive
  patched run that changes nothing gives the plain run's metric bit for bit; the fast route's batched
  matrix products round differently in the last bits (about 1e-7 of a logit).

Example::

    clean = cached_run(model, clean_ids, metric, read, sites)
    corrupted = cached_run(model, corrupted_ids, metric, read, sites)
    plan = PatchPlan(model, metric, corrupted_ids, read, [corrupted], [clean], [None])
    values = run_fast(plan, [PatchJob(Site("resid_post", 3), (4,))])    # (jobs,) float64
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from workbench.explain.footprint import FLOAT, ModelShape
from workbench.explain.metrics import BoundMetric
from workbench.explain.output_head import head_only_at
from workbench.explain.sites import Site, Writer, hooked, site_map, start_at

__all__ = [
    "CachedRun",
    "PatchJob",
    "PatchPlan",
    "cached_run",
    "patch_row_bytes",
    "run_fast",
    "run_naive",
    "start_layer",
]

ROW_TOKENS = 2048  # tokens per fast forward, at most: larger batches gain nothing on a CPU


@dataclass(frozen=True)
class PatchJob:
    """One patched run: ``site``'s activation at ``positions`` taken from the source run of pair ``sample``."""

    site: Site
    positions: tuple[int, ...]
    sample: int = 0


@dataclass
class CachedRun:
    """One plain run, kept for patching: its metric, the residual stream and the chosen sites' activations."""

    metric: float
    resid: torch.Tensor  # (layers + 1, n, hidden): entering each layer, and leaving the last
    sites: dict[Site, torch.Tensor] = field(default_factory=dict)  # site -> (n, width)


@dataclass
class PatchPlan:
    """What every patched run shares: the base input, the read position, and per pair its runs and noise."""

    model: torch.nn.Module
    metric: BoundMetric
    inputs: dict[str, torch.Tensor]  # the base run's tokenizer tensors, (1, n)
    read: int
    base: list[CachedRun]  # per pair: the run patched into
    source: list[CachedRun]  # per pair: the run whose activations are put in
    noise: list[torch.Tensor | None]  # per pair: added to the base run's embeddings, (n, hidden), or None


def start_layer(site: Site) -> int:
    """The first layer a patched run must compute: the one after ``resid_post``, the site's own otherwise."""
    if site.kind == "embed":
        return 0
    return site.layer + 1 if site.kind == "resid_post" else site.layer


def _embedding_writer(noise: torch.Tensor) -> Writer:
    def add(x: torch.Tensor) -> torch.Tensor:
        return x + noise.to(x.dtype)  # noise: (batch or 1, n, hidden)

    return add


def _replace_writer(mask: torch.Tensor, source: torch.Tensor) -> Writer:
    """Where ``mask`` (rows, n, 1) holds, the activation becomes ``source`` (rows, n, width)."""

    def replace(x: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, source.to(x.dtype), x)

    return replace


def cached_run(
    model: torch.nn.Module,
    inputs: Mapping[str, Any],
    metric: Callable[[torch.Tensor], torch.Tensor],
    read: int,
    sites: Sequence[Site],
    *,
    noise: torch.Tensor | None = None,
    writers: Sequence[tuple[Site, Writer]] = (),
) -> CachedRun:
    """A plain forward (with ``noise`` on the embeddings, and ``writers`` after it) whose residual stream
    and ``sites`` are kept. Call within ``inference(model)``, or with gradients for attribution patching."""
    found = site_map(model)
    kept: dict[Site, torch.Tensor] = {}

    def keeper(site: Site) -> Writer:
        def keep(x: torch.Tensor) -> None:
            kept[site] = x[0].detach()  # (n, width)

        return keep

    resid_sites = [Site("resid_pre", i) for i in range(found.num_layers)] + [Site("resid_post", found.num_layers - 1)]
    pairs: list[tuple[Site, Writer]] = [] if noise is None else [(Site("embed"), _embedding_writer(noise[None]))]
    pairs += list(writers)
    pairs += [(s, keeper(s)) for s in dict.fromkeys([*resid_sites, *sites])]
    with hooked(model, pairs):
        logits = model(**inputs).logits[:, read]  # (1, vocab)
    value = float(metric(logits)[0].detach())
    resid = torch.stack([kept[s] for s in resid_sites])  # (layers + 1, n, hidden)
    return CachedRun(value, resid, {s: kept[s] for s in sites})


def patch_row_bytes(shape: ModelShape, n: int, naive: bool = False) -> int:
    """One patched run's activations: a layer at a time, the rows made for it, and its logits."""
    logits = shape.logits_bytes(n) if naive else shape.logits_bytes(1)
    return shape.layer_bytes(n) + 4 * FLOAT * n * shape.hidden + logits


def _source_rows(plan: PatchPlan, jobs: Sequence[PatchJob], site: Site, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask (rows, n, 1), source (rows, n, width)) for the rows of ``jobs`` that patch ``site``."""
    mask = torch.zeros(len(jobs), n, 1, dtype=torch.bool)
    for row, job in enumerate(jobs):
        if job.site == site:
            mask[row, list(job.positions)] = True
    source = torch.stack([plan.source[job.sample].sites[site] for job in jobs])  # (rows, n, width)
    return mask.to(source.device), source


def _forward_rows(plan: PatchPlan, jobs: Sequence[PatchJob], naive: bool) -> torch.Tensor:
    """The metric of each job's patched run, all in one forward; ``(rows,)``."""
    model, n, rows = plan.model, plan.inputs["input_ids"].shape[1], len(jobs)
    first = start_layer(jobs[0].site)
    writers: list[tuple[Site, Writer]] = []
    start: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    patch_sites = list(dict.fromkeys(job.site for job in jobs))
    if first == 0 or naive:  # from the embeddings, with each row's noise
        noises = [plan.noise[job.sample] for job in jobs]
        if any(x is not None for x in noises):
            zero = torch.zeros_like(next(x for x in noises if x is not None))
            noise = torch.stack([zero if x is None else x for x in noises])  # (rows, n, hidden)
            writers.append((Site("embed"), _embedding_writer(noise)))
    else:  # from the base runs' residual stream entering ``first``
        resid = torch.stack([plan.base[job.sample].resid[first] for job in jobs])  # (rows, n, hidden)
        if jobs[0].site.kind in ("resid_pre", "resid_post"):  # the patched stream itself enters ``first``
            mask, source = _source_rows(plan, jobs, patch_sites[0], n)
            resid = torch.where(mask, source.to(resid.dtype), resid)
            patch_sites = []
        start = start_at(model, first, resid)
    for site in patch_sites:
        writers.append((site, _replace_writer(*_source_rows(plan, jobs, site, n))))
    inputs = {k: v.expand(rows, *v.shape[1:]) for k, v in plan.inputs.items()}
    if naive:
        with hooked(model, writers):
            logits = model(**inputs).logits[:, plan.read]  # (rows, vocab)
    else:
        read = torch.full((rows, 1), plan.read, dtype=torch.long)
        with start, hooked(model, writers), head_only_at(model, read):
            logits = model(**inputs).logits[:, 0]  # (rows, vocab)
    return plan.metric(logits).detach().double().cpu()


def run_fast(plan: PatchPlan, jobs: Sequence[PatchJob], batch_size: int | None = None) -> np.ndarray:
    """The metric of every job's patched run, ``(jobs,)``: jobs that start at the same layer share a forward,
    ``batch_size`` rows at a time (default: ``ROW_TOKENS`` tokens per forward)."""
    n = plan.inputs["input_ids"].shape[1]
    size = batch_size or max(1, ROW_TOKENS // n)
    values = np.zeros(len(jobs))
    groups: dict[tuple[int, str], list[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault((start_layer(job.site), job.site.kind), []).append(index)
    for indexes in groups.values():
        for begin in range(0, len(indexes), size):
            chunk = indexes[begin : begin + size]
            values[chunk] = _forward_rows(plan, [jobs[i] for i in chunk], naive=False).numpy()
    return values


def run_naive(plan: PatchPlan, jobs: Sequence[PatchJob]) -> np.ndarray:
    """The metric of every job's patched run, ``(jobs,)``: one full forward each, the reference route."""
    values = np.zeros(len(jobs))
    for index, job in enumerate(jobs):
        values[index] = float(_forward_rows(plan, [job], naive=True)[0])
    return values
