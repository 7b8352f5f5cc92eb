"""Out-of-fold evaluation of any policy: fit on k-1 folds, route the held-out fold, at every threshold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from condsel.selection.policies import Policy, metric_name, metric_value
from condsel.selection.table import PredictionTable


@dataclass(frozen=True)
class FoldFits:
    """One fitted policy per fold, with the held-out samples it routes."""

    policies: list[Policy]
    tests: list[np.ndarray]
    prepared: list  # each policy's cached view of its held-out samples


def fit_folds(make_policy: Callable[[], Policy], table: PredictionTable, folds: np.ndarray) -> FoldFits:
    """Fit ``make_policy()`` on every fold's training samples (``folds`` (N,) fold ids)."""
    policies, tests, prepared = [], [], []
    for k in np.unique(folds):
        train, test = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        policy = make_policy().fit(table.subset(train))
        policies.append(policy)
        tests.append(test)
        prepared.append(policy._prepare(table.subset(test)))
    return FoldFits(policies, tests, prepared)


def oof_sweep(fits: FoldFits, table: PredictionTable, thresholds: np.ndarray) -> list[dict]:
    """Out-of-fold mean GFLOPs and metric at each threshold (every fold's policy at the same t)."""
    metric = metric_name(table)
    order = np.concatenate(fits.tests)
    labels = table.labels[order]
    points = []
    for t in thresholds:
        routes = [p._route(prep, float(t)) for p, prep in zip(fits.policies, fits.prepared)]
        scores = np.concatenate([r.scores for r in routes])
        gflops = np.concatenate([r.gflops for r in routes])
        points.append({"threshold": float(t), "gflops": float(gflops.mean()), metric: metric_value(scores, labels)})
    return points
