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

import functools
import itertools
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from condsel._io import return_freed_memory, torch_threads
from condsel._parallel import forked_imap, forked_map, in_worker
from condsel.selection.data.table import PredictionTable
from condsel.selection.method.fusion import FusedStats, member_outputs, percent
from condsel.selection.method.policies.base import Outcomes, Policy, Routing, metric_value
from condsel.selection.method.metrics import column_labels
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

    def ran(self, fold: int, threshold: float) -> np.ndarray:
        """(N, K) bool over the policy's ``members_``: which members ran on ``fold``'s samples at ``threshold``."""
        return self.policy._ran_at(self.prepared(fold), float(threshold))

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


def _fit_one(table: PredictionTable, folds: np.ndarray, job: tuple[Policy, tuple[int, ...]]) -> Policy:
    policy, excluded = job
    with torch_threads(1):
        fitted = policy.clone().fit(table.subset(np.flatnonzero(~np.isin(folds, excluded))), choose_default=False)
    if in_worker():  # the calling process does not trim (see return_freed_memory)
        return_freed_memory()
    return fitted


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
    parts = forked_map(lambda job: outputs.compute_stats(*job), jobs, workers)
    for i, s in enumerate(todo):
        outputs.add_stats(s, FusedStats.concatenate([p[i] for p in parts]))


def _fits(jobs: list, table: PredictionTable, folds: np.ndarray, workers: int):
    """Fitted clones of the jobs' policies, in job order, made here or by ``workers`` forked processes.

    Each fit is seeded by its policy and runs one torch thread, so results do
    not depend on the worker count (only the order they are collected in, which is fixed).
    """
    derive_shared(table, workers)
    yield from forked_imap(functools.partial(_fit_one, table, folds), jobs, workers)


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


def _held_out_fits(fits: CrossFits, outer_fold: int | None) -> list[tuple[int, HeldOutFit]]:
    """(fold, fit) pairs that route every sample :func:`held_out_routes` covers, by a fit that never saw it."""
    return [(i, fits.outer[i] if outer_fold is None else fits.inner[(outer_fold, i)]) for i in fits.outer if i != outer_fold]


def column_scores(routes: Iterable[Routing], rows: int, out: np.ndarray | None = None) -> np.ndarray:
    """The routes' scores one after another in one (rows, C) float32 array, in column order.

    mAP reads a class's scores over every sample at a time: stored by
    column, they are contiguous. ``out`` (such an array) is reused.
    """
    start = 0
    for r in routes:
        out = np.empty((rows, r.scores.shape[1]), dtype=np.float32, order="F") if out is None else out
        out[start:start + len(r.scores)] = r.scores
        start += len(r.scores)
    return out


def held_out_routes(fits: CrossFits, threshold: float, outer_fold: int | None = None, out: np.ndarray | None = None) -> HeldOutRoutes:
    """Every sample routed by a fit that never saw it (scores by :func:`column_scores`, into ``out`` when given).

    ``outer_fold=None``: all samples, by the outer fits (out-of-fold). Else the
    samples outside ``outer_fold``, by the inner fits that also lack it.
    """
    parts = _held_out_fits(fits, outer_fold)
    gflops = []

    def routed():
        for i, fit in parts:
            r = fit.route(i, threshold)
            gflops.append(r.gflops)
            yield r

    rows = np.concatenate([np.flatnonzero(fits.folds == i) for i, _ in parts])
    return HeldOutRoutes(rows, column_scores(routed(), len(rows), out), np.concatenate(gflops))


def held_out_curve(fits: CrossFits, table: PredictionTable, thresholds: np.ndarray, outer_fold: int | None = None,
                   exact: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(mean GFLOPs, value) at each threshold over the samples :func:`held_out_routes` covers.

    The value is top-1 %, or for multi-label mAP % (``exact``) or minus the
    mean fused loss, the per-sample units every choice-only estimate uses
    (:meth:`~condsel.selection.method.fusion.FusedStats.training_value`).
    Everything but mAP decomposes over samples and comes from each fit's
    :class:`~condsel.selection.method.policies.base.Outcomes`; mAP is
    computed once per distinct routing (thresholds that route every sample
    alike share it), into one reused array of scores.
    """
    parts = _held_out_fits(fits, outer_fold)
    outcomes = [(i, fit.outcomes(i, thresholds)) for i, fit in parts]
    costs = np.hstack([o.gflops for _, o in outcomes]).mean(axis=1)
    if not (table.multilabel and exact):
        utility = np.hstack([o.utility(table.labels[fits.folds == i]) for i, o in outcomes])
        return costs, percent(utility.mean(axis=1), table.multilabel)
    labels = column_labels(table.labels[np.concatenate([np.flatnonzero(fits.folds == i) for i, _ in parts])])
    values, seen, scores = [], {}, None
    for t, threshold in enumerate(thresholds):
        key = b"".join(o.picks[t].tobytes() for _, o in outcomes)
        if key not in seen:
            scores = held_out_routes(fits, threshold, outer_fold, scores).scores
            seen[key] = metric_value(scores, labels)
        values.append(seen[key])
    return costs, np.array(values)


def inner_curves(fits: dict[str, CrossFits], table: PredictionTable, thresholds: np.ndarray, workers: int = 1) -> dict[int, dict]:
    """For each outer fold, every policy's curve estimated on the other folds by fits that never saw the outer fold.

    Estimates are per sample (top-1, or minus the mean loss for multi-label):
    they only rank options, and a multi-label one would otherwise rank all
    samples again at every threshold of every policy and fold. ``workers``
    forked processes share the (fold, policy) curves.
    """
    folds = next(iter(fits.values())).folds
    jobs = [(k, name) for k in np.unique(folds).tolist() for name in fits]
    curves = forked_map(lambda job: held_out_curve(fits[job[1]], table, thresholds, outer_fold=job[0], exact=False), jobs, workers)
    inner: dict[int, dict] = {}
    for (k, name), curve in zip(jobs, curves):
        inner.setdefault(k, {})[name] = curve
    return inner
