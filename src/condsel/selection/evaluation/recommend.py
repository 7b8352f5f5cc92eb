"""The honest recommended front: per budget, a policy and its setting chosen without the held-out fold.

For each budget and each outer fold k, every candidate policy's curve is
estimated on the outer training folds alone (inner cross-fits, see
:mod:`condsel.selection.evaluation.crossfit`); the most accurate (policy, threshold)
whose estimated mean cost stays within the budget is chosen, and the policy
fitted on all outer training folds routes fold k at that threshold. The
reported point is the held-out result over all folds, its GFLOPs the mean
actually reached. Held-out labels are never read before that last step.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np

from condsel._parallel import forked_map
from condsel.selection.evaluation.crossfit import CrossFits, column_scores, inner_curves
from condsel.selection.method.metrics import column_labels
from condsel.selection.method.policies.base import metric_value, ended_counts
from condsel.selection.data.table import PredictionTable

log = logging.getLogger(__name__)


def budget_grid(table: PredictionTable, points: int = 25) -> np.ndarray:
    """Budgets from the cheapest to the costliest member, spaced evenly in log cost."""
    costs = [table.gflops[m] for m in table.logits]
    return np.geomspace(min(costs), max(costs), points)


@dataclass(frozen=True)
class Choice:
    policy: str
    threshold: float
    estimate: float  # inner-CV metric
    estimated_gflops: float


def choose(curves: dict[str, tuple[np.ndarray, np.ndarray]], thresholds: np.ndarray, budget: float) -> Choice:
    """The most accurate (policy, threshold) whose estimated cost is within ``budget``; the cheapest one if none is."""
    options = [(name, i) for name, (c, _) in curves.items() for i in range(len(c))]
    within = [(n, i) for n, i in options if curves[n][0][i] <= budget + 1e-9]
    if within:
        name, i = max(within, key=lambda o: (curves[o[0]][1][o[1]], -curves[o[0]][0][o[1]]))
    else:
        name, i = min(options, key=lambda o: (curves[o[0]][0][o[1]], -curves[o[0]][1][o[1]]))
    c, v = curves[name]
    return Choice(name, float(thresholds[i]), float(v[i]), float(c[i]))


@dataclass(frozen=True)
class NestedPoint:
    """The held-out outcome of one budget: per-fold choices, the metric and per-sample results.

    Per-sample top-1 hits (single-label, for the bootstrap) are kept, never
    the (N, C) scores: a run holds one point per budget.
    """

    budget: float
    choices: dict[int, Choice]
    value: float  # top-1 or mAP, %, over every held-out sample
    gflops: np.ndarray  # (N,)
    hits: np.ndarray | None  # (N,) bool top-1 hits; None for mAP
    share: dict[str, float]  # member -> share of held-out videos whose routing ended at it (ended_counts)

    def to_dict(self, table: PredictionTable) -> dict:
        metric = "map" if table.multilabel else "top1"
        names = Counter(c.policy for c in self.choices.values())
        return {
            "budget": float(self.budget),
            "policy": names.most_common(1)[0][0],
            "gflops": float(self.gflops.mean()),
            metric: float(self.value),
            "chosen": [{"fold": k, "policy": c.policy, "threshold": c.threshold} for k, c in sorted(self.choices.items())],
            "share": dict(self.share),
        }


def nested_front(
    fits: dict[str, CrossFits], table: PredictionTable, budgets: np.ndarray, thresholds: np.ndarray, inner: dict[int, dict] | None = None,
    workers: int = 1,
) -> list[NestedPoint]:
    """The recommended point at each budget among the policies in ``fits`` (each cross-fitted with nesting).

    ``inner`` (from :func:`inner_curves`, possibly for more policies) saves
    recomputing the estimates. A multi-label point's mAP is computed once
    per distinct set of choices (neighbouring budgets often share one), by
    ``workers`` forked processes.
    """
    folds = next(iter(fits.values())).folds
    inner = inner_curves(fits, table, thresholds, workers) if inner is None else inner
    inner = {k: {name: curves[name] for name in fits} for k, curves in inner.items()}
    plans = []
    for budget in budgets:
        choices = {k: choose(curves, thresholds, budget) for k, curves in inner.items()}
        outcomes = {k: fits[c.policy].outer[k].outcomes(k, np.array([c.threshold])) for k, c in choices.items()}
        plans.append((float(budget), choices, outcomes, tuple((k, c.policy, c.threshold) for k, c in choices.items())))
    maps = {}
    if table.multilabel:
        rows = np.concatenate([np.flatnonzero(folds == k) for k in inner])  # every key lists the folds in this order
        labels = column_labels(table.labels[rows])

        def routed_map(key: tuple) -> float:
            return metric_value(column_scores((fits[policy].outer[k].route(k, threshold) for k, policy, threshold in key), len(rows)), labels)

        keys = list(dict.fromkeys(plan[3] for plan in plans))
        maps = dict(zip(keys, forked_map(routed_map, keys, workers)))
    points = []
    for budget, choices, outcomes, key in plans:
        gflops = np.concatenate([o.gflops[0] for o in outcomes.values()])
        share = held_out_share(fits, table, choices)
        if table.multilabel:
            points.append(NestedPoint(budget, choices, maps[key], gflops, None, share))
        else:  # per-sample GFLOPs and top-1 hits: no (N, C) scores
            hits = np.concatenate([o.top1()[0] == table.labels[folds == k] for k, o in outcomes.items()])
            points.append(NestedPoint(budget, choices, 100 * float(hits.mean()), gflops, hits, share))
    return points


def held_out_share(fits: dict[str, CrossFits], table: PredictionTable, choices: dict[int, Choice]) -> dict[str, float]:
    """Every model of ``table`` -> the share of held-out videos whose routing ended at it, each fold routed by its choice.

    The shares sum to 1 (:func:`~condsel.selection.method.policies.base.ended_counts`);
    a model no chosen policy runs has 0.
    """
    counts = dict.fromkeys(table.models, 0)
    for k, c in choices.items():
        fit = fits[c.policy].outer[k]
        members = fit.policy.members_
        ended = ended_counts(fit.ran(k, c.threshold), members, np.array([fit.policy.gflops_[m] for m in members]))
        for m, n in ended.items():
            counts[m] += int(n)
    total = sum(counts.values())
    return {m: n / total for m, n in counts.items()}


def bootstrap_interval(point: NestedPoint, table: PredictionTable, replicates: int, seed: int) -> dict | None:
    """95% percentile interval of a nested point's top-1, resampling videos (None for mAP)."""
    if point.hits is None or replicates <= 0:
        return None
    hits = point.hits.astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = [100 * hits[rng.integers(0, len(hits), len(hits))].mean() for _ in range(replicates)]
    return {"low": float(np.percentile(draws, 2.5)), "high": float(np.percentile(draws, 97.5))}
