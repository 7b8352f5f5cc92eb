"""Cross-fitting any policy: out-of-fold curves and the nested estimates that honest choices need.

With k folds, a policy is fitted once without each fold (the outer fits,
which give out-of-fold predictions) and once without each pair of folds (the
inner fits). For outer fold k, the samples of fold i != k are then routed by
the fit that saw neither i nor k: an out-of-fold estimate made from the
outer training folds alone, so choices made on it never read fold k.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from condsel.selection.method.policies.base import Policy, Routing, metric_value
from condsel.selection.data.table import PredictionTable


@dataclass(frozen=True)
class HeldOutFit:
    """A policy fitted without some folds, with its cached view of each of them."""

    policy: Policy
    prepared: dict[int, object]

    def route(self, fold: int, threshold: float) -> Routing:
        return self.policy._route(self.prepared[fold], float(threshold))


@dataclass(frozen=True)
class CrossFits:
    """Every fit one policy needs: ``outer[k]`` lacks fold k, ``inner[{i, k}]`` lacks folds i and k."""

    folds: np.ndarray
    outer: dict[int, HeldOutFit]
    inner: dict[frozenset, HeldOutFit]


def fit_without(make_policy: Callable[[], Policy], table: PredictionTable, folds: np.ndarray, excluded: tuple[int, ...]) -> HeldOutFit:
    policy = make_policy().fit(table.subset(np.flatnonzero(~np.isin(folds, excluded))))
    return HeldOutFit(policy, {k: policy._prepare(table.subset(np.flatnonzero(folds == k))) for k in excluded})


def cross_fit(make_policy: Callable[[], Policy], table: PredictionTable, folds: np.ndarray, nested: bool = True, progress=None) -> CrossFits:
    """Outer fits, and inner fits when ``nested``; ``progress`` is called once per fit."""
    ids = [int(k) for k in np.unique(folds)]
    outer, inner = {}, {}
    for k in ids:
        outer[k] = fit_without(make_policy, table, folds, (k,))
        if progress:
            progress()
    if nested:
        for i, j in itertools.combinations(ids, 2):
            inner[frozenset((i, j))] = fit_without(make_policy, table, folds, (i, j))
            if progress:
                progress()
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
            parts.append((i, fits.inner[frozenset((i, outer_fold))].route(i, threshold)))
    rows = np.concatenate([np.flatnonzero(fits.folds == i) for i, _ in parts])
    return HeldOutRoutes(rows, np.concatenate([r.scores for _, r in parts]), np.concatenate([r.gflops for _, r in parts]))


def held_out_curve(fits: CrossFits, table: PredictionTable, thresholds: np.ndarray, outer_fold: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mean GFLOPs, metric) at each threshold over the samples :func:`held_out_routes` covers."""
    costs, values = [], []
    for t in thresholds:
        r = held_out_routes(fits, t, outer_fold)
        costs.append(r.gflops.mean())
        values.append(metric_value(r.scores, table.labels[r.rows]))
    return np.array(costs), np.array(values)
