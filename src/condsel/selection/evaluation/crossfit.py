"""Cross-fitting any policy: out-of-fold curves and the nested estimates that honest choices need.

With k folds, a policy is fitted once without each fold (the outer fits,
which give out-of-fold predictions) and once without each pair of folds (the
inner fits). For outer fold k, the samples of fold i != k are then routed by
the fit that saw neither i nor k: an out-of-fold estimate made from the
outer training folds alone, so choices made on it never read fold k.

A policy may differ per outer fold (e.g. a backbone chosen on that fold's
training folds): its inner fits for outer fold k then use fold k's policy.
Fits with equal hyperparameters and equal excluded folds are made once.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from condsel._io import return_freed_memory, torch_threads
from condsel.selection.data.table import PredictionTable
from condsel.selection.method.fusion import FusedStats, member_outputs, percent
from condsel.selection.method.policies.base import Outcomes, Policy, Routing, metric_value
from condsel.selection.method.static import subsets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldOutFit:
    """A policy fitted without some folds, with a view of each of them, prepared for routing on first use.

    Preparing (e.g. a selector's confidences) waits until a curve needs it,
    after the fits: the calling process then does no (N, C) work while its
    fit workers are alive, and their memory peaks do not add up with its own.
    """

    policy: Policy
    views: dict[int, PredictionTable]
    _prepared: dict[int, object] = field(default_factory=dict)

    def prepared(self, fold: int):
        if fold not in self._prepared:
            self._prepared[fold] = self.policy._prepare(self.views[fold])
        return self._prepared[fold]

    def route(self, fold: int, threshold: float) -> Routing:
        return self.policy._route(self.prepared(fold), float(threshold))

    def outcomes(self, fold: int, thresholds: np.ndarray) -> Outcomes:
        """``fold``'s samples routed at each threshold, as summaries (no scores kept)."""
        return self.policy._outcomes(self.prepared(fold), np.asarray(thresholds, dtype=np.float64))


@dataclass(frozen=True)
class CrossFits:
    """Every fit one policy needs: ``outer[k]`` lacks fold k; ``inner[(k, i)]`` lacks folds k and i and routes fold i for outer fold k."""

    folds: np.ndarray
    outer: dict[int, HeldOutFit]
    inner: dict[tuple[int, int], HeldOutFit]


def held_out(fitted: Policy, table: PredictionTable, folds: np.ndarray, excluded: tuple[int, ...]) -> HeldOutFit:
    """``fitted`` (trained without ``excluded``) with a view of each excluded fold."""
    return HeldOutFit(fitted, {k: table.subset(np.flatnonzero(folds == k)) for k in excluded})


_WORK: tuple = ()  # (table, folds) of the running fit_all, inherited by forked workers


def _fit_job(job: tuple[Policy, tuple[int, ...]]) -> Policy:
    table, folds = _WORK
    policy, excluded = job
    with torch_threads(1):
        fitted = policy.clone().fit(table.subset(np.flatnonzero(~np.isin(folds, excluded))), choose_default=False)
    if _IN_WORKER:
        return_freed_memory()
    return fitted


def _stats_job(job: tuple[list[tuple[str, ...]], slice]):
    table, _ = _WORK
    return member_outputs(table.origin[0]).compute_stats(*job)


_IN_WORKER = False  # set in forked workers: only they trim their heap (see _fit_job)


def _mark_worker() -> None:
    global _IN_WORKER
    _IN_WORKER = True


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_mark_worker)


_TASK = None  # the function forked_map's workers apply, inherited at fork rather than pickled


def _apply_task(item):
    return _TASK(item)


def forked_map(fn, items, workers: int) -> list:
    """``[fn(x) for x in items]``, by ``workers`` forked processes when there are several.

    The workers inherit what ``fn`` reads (fits, shared arrays, a closure
    over them) at fork, so only the items and the results travel. Each item
    is computed alone, so the results do not depend on the worker count.
    """
    global _TASK
    items = list(items)
    if workers <= 1 or len(items) < 2:
        return [fn(x) for x in items]
    _TASK = fn
    try:
        with _pool(min(workers, len(items))) as pool:
            return list(pool.map(_apply_task, items))
    finally:
        _TASK = None


def derive_shared(table: PredictionTable, workers: int) -> None:
    """Make what every fit reads once, before forking: member losses and the stats of every subset of up to 3.

    Fits of cascades, their pruning and static choices read those stats on
    every fold; made here (by ``workers`` processes, each on a range of
    rows) they are inherited by every worker instead of computed in each.
    """
    root = table.origin[0]  # stats are made on the root table and read by its views
    outputs = member_outputs(root)
    for member in root.models:
        outputs.member_loss(member)
    todo = [s for s in subsets(root.models, 3) if not outputs.has_stats(s)]
    if not todo:
        return
    n = root.num_samples
    bounds = np.linspace(0, n, min(n, 4 * workers) + 1).round().astype(int) if workers > 1 else np.array([0, n])
    jobs = [(todo, slice(lo, hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]
    if len(jobs) < 2:
        parts = [outputs.compute_stats(*job) for job in jobs]
    else:
        with _pool(workers) as pool:
            parts = list(pool.map(_stats_job, jobs))
    for i, s in enumerate(todo):
        outputs.add_stats(s, FusedStats.concatenate([p[i] for p in parts]))


def _fits(jobs: list, table: PredictionTable, folds: np.ndarray, workers: int):
    """Fitted clones of the jobs' policies, in job order, made here or by ``workers`` forked processes.

    Each fit is seeded by its policy and runs one torch thread, so results do
    not depend on the worker count (only the order they are collected in, which is fixed).
    """
    global _WORK
    _WORK = (table, folds)
    try:
        derive_shared(table, workers)
        if workers <= 1 or len(jobs) < 2:
            yield from map(_fit_job, jobs)
            return
        with _pool(min(workers, len(jobs))) as pool:
            yield from pool.map(_fit_job, jobs)
    finally:
        _WORK = ()


def fit_jobs(policy: Policy | Mapping[int, Policy], folds: np.ndarray, nested: bool) -> list[tuple[Policy, tuple[int, ...]]]:
    """The distinct (policy, excluded folds) fits a cross-fit needs, in a fixed order."""
    ids = [int(k) for k in np.unique(folds)]
    per_fold = policy if isinstance(policy, Mapping) else {k: policy for k in ids}
    wanted = [(per_fold[k], (k,)) for k in ids]
    if nested:
        wanted += [(per_fold[k], tuple(sorted((k, i)))) for k, i in itertools.permutations(ids, 2)]
    jobs, seen = [], set()
    for p, excluded in wanted:
        key = fit_key(p, excluded)
        if key not in seen:
            seen.add(key)
            jobs.append((p, excluded))
    return jobs


def fit_key(policy: Policy, excluded: tuple[int, ...]) -> tuple:
    return type(policy).__name__, repr(sorted(policy.get_params().items())), tuple(sorted(excluded))


def fit_all(
    table: PredictionTable,
    folds: np.ndarray,
    requests: Mapping[str, Policy | Mapping[int, Policy]],
    nested: bool = True,
    progress=None,
    workers: int = 1,
) -> dict[str, CrossFits]:
    """Cross-fit every request by name, each distinct (hyperparameters, excluded folds) fit made once across all.

    A request is a prototype (cloned for every fit) or one prototype per
    outer fold. ``progress`` (tqdm-like) has its ``total`` raised by the fits
    planned and is updated after each. ``workers`` > 1 fits in that many
    forked processes; the result is the same whatever the count.
    """
    jobs, seen = [], set()
    for policy in requests.values():
        for job in fit_jobs(policy, folds, nested):
            if fit_key(*job) not in seen:
                seen.add(fit_key(*job))
                jobs.append(job)
    if progress is not None:
        progress.total = (progress.total or 0) + len(jobs)
        progress.refresh()
    fitted, start = {}, time.perf_counter()
    for (policy, excluded), fit in zip(jobs, _fits(jobs, table, folds, workers)):
        fitted[fit_key(policy, excluded)] = held_out(fit, table, folds, excluded)
        if progress is not None:
            progress.update(1)
    log.info("cross-fitted %s in %.1f s (%d fits, %d workers)", ", ".join(requests), time.perf_counter() - start, len(jobs), workers)
    return {name: assemble(policy, folds, nested, fitted) for name, policy in requests.items()}


def cross_fit(policy: Policy | Mapping[int, Policy], table: PredictionTable, folds: np.ndarray, nested: bool = True) -> CrossFits:
    """Outer fits of ``policy``, and inner fits when ``nested`` (see :func:`fit_all`)."""
    return fit_all(table, folds, {"policy": policy}, nested)["policy"]


def assemble(policy: Policy | Mapping[int, Policy], folds: np.ndarray, nested: bool, fitted: dict[tuple, HeldOutFit]) -> CrossFits:
    """The :class:`CrossFits` of ``policy`` from fits made elsewhere, keyed as :func:`fit_jobs` names them."""
    ids = [int(k) for k in np.unique(folds)]
    per_fold = policy if isinstance(policy, Mapping) else {k: policy for k in ids}
    outer = {k: fitted[fit_key(per_fold[k], (k,))] for k in ids}
    inner = {(k, i): fitted[fit_key(per_fold[k], (k, i))] for k, i in itertools.permutations(ids, 2)} if nested else {}
    return CrossFits(folds, outer, inner)


@dataclass(frozen=True)
class HeldOutRoutes:
    """Routes of held-out samples at one threshold, concatenated over folds, with the rows they belong to."""

    rows: np.ndarray
    scores: np.ndarray
    gflops: np.ndarray


def held_out_routes(fits: CrossFits, threshold: float, outer_fold: int | None = None) -> HeldOutRoutes:
    """Every sample routed by a fit that never saw it.

    ``outer_fold=None``: all samples, by the outer fits (out-of-fold). Else the
    samples outside ``outer_fold``, by the inner fits that also lack it.
    """
    parts = []
    for i in fits.outer:
        if outer_fold is None:
            parts.append((i, fits.outer[i].route(i, threshold)))
        elif i != outer_fold:
            parts.append((i, fits.inner[(outer_fold, i)].route(i, threshold)))
    rows = np.concatenate([np.flatnonzero(fits.folds == i) for i, _ in parts])
    return HeldOutRoutes(rows, np.concatenate([r.scores for _, r in parts]), np.concatenate([r.gflops for _, r in parts]))


def held_out_curve(fits: CrossFits, table: PredictionTable, thresholds: np.ndarray, outer_fold: int | None = None,
                   exact: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(mean GFLOPs, value) at each threshold over the samples :func:`held_out_routes` covers.

    The value is top-1 %, or for multi-label mAP % (``exact``) or minus the
    mean fused loss, the per-sample units every choice-only estimate uses
    (:meth:`~condsel.selection.method.fusion.FusedStats.training_value`).
    Everything but mAP decomposes over samples and comes from each fit's
    :class:`~condsel.selection.method.policies.base.Outcomes`; mAP is
    computed once per distinct routing (thresholds that route every sample
    alike share it).
    """
    parts = [(i, fits.outer[i] if outer_fold is None else fits.inner[(outer_fold, i)]) for i in fits.outer if i != outer_fold]
    outcomes = [(i, fit.outcomes(i, thresholds)) for i, fit in parts]
    costs = np.hstack([o.gflops for _, o in outcomes]).mean(axis=1)
    if not (table.multilabel and exact):
        utility = np.hstack([o.utility(table.labels[fits.folds == i]) for i, o in outcomes])
        return costs, percent(utility.mean(axis=1), table.multilabel)
    values, seen = [], {}
    for t, threshold in enumerate(thresholds):
        key = b"".join(o.picks[t].tobytes() for _, o in outcomes)
        if key not in seen:
            r = held_out_routes(fits, threshold, outer_fold)
            seen[key] = metric_value(r.scores, table.labels[r.rows])
        values.append(seen[key])
    return costs, np.array(values)
