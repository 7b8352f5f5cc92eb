"""Static choices on the policies' action space: run a fixed member or fused subset on every video.

These are the baselines a policy must beat: every single member and every
fused subset of up to three (mean of probabilities), their upper hull (what
mixing static choices at random reaches), and the fusion-aware oracle, which
runs per video the cheapest static choice that gets it right.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from condsel._parallel import forked_map
from condsel.selection.method.curves import oracle_curve, upper_hull
from condsel.selection.method.fusion import MemberOutputs, gather, member_outputs
from condsel.selection.method.metrics import MAP_POINTS, column_labels, mean_average_precision
from condsel.selection.data.table import PredictionTable

MAX_LISTED = 100  # beyond this many subsets only the Pareto ones are listed


@dataclass(frozen=True)
class StaticChoices:
    """Every static choice, by ascending cost, scored on one table.

    Fused probabilities are not kept (a large pool has thousands of subsets);
    :meth:`probs` recomputes one choice's on demand.
    """

    members: list[tuple[str, ...]]
    gflops: np.ndarray  # (S,)
    values: np.ndarray  # (S,) top-1 or mAP, % (minus the mean loss for inexact multi-label, see static_choices)
    per_sample: np.ndarray  # (N, S) top-1 hits (single-label) or fused losses (multi-label)
    outputs: MemberOutputs

    def probs(self, i: int, rows: np.ndarray | None = None) -> np.ndarray:
        return self.outputs.fuse(self.members[i], rows=rows)


def subsets(members: list[str], max_size: int = 3) -> list[tuple[str, ...]]:
    """Every non-empty subset of up to ``max_size`` members, each in the given member order."""
    return [c for size in range(1, min(max_size, len(members)) + 1) for c in itertools.combinations(members, size)]


def static_choices(table: PredictionTable, max_size: int = 3, members: list[str] | None = None, exact: bool = True,
                   workers: int = 1) -> StaticChoices:
    """Every single member and fused subset (mean of probabilities) of ``members`` (default: all), by ascending cost.

    Read from the table's :class:`~condsel.selection.method.fusion.FusedStats`,
    made once per subset on the root table, so fits on its folds fuse nothing.
    Multi-label values are mAP, which needs each subset's fused scores; with
    ``exact=False`` (ranking choices on training samples) they are minus
    the mean fused loss instead, which is per sample and so computed once.
    Exact mAPs are computed by ``workers`` forked processes.
    """
    members = table.models if members is None else members
    chosen = subsets(members, max_size)
    costs = np.array([sum(table.gflops[m] for m in c) for c in chosen])
    order = np.argsort(costs, kind="stable")
    outputs = member_outputs(table)
    stats = [outputs.stats(chosen[i]) for i in order]
    if table.multilabel and exact:
        labels = column_labels(table.labels)
        values = np.array(forked_map(lambda i: 100 * mean_average_precision(outputs.fuse(chosen[i]), labels), order.tolist(), workers))
    else:
        values = np.array([s.training_value(table.labels) for s in stats])
    per_sample = np.stack([s.loss if table.multilabel else s.hits(table.labels) for s in stats], axis=1)
    return StaticChoices([chosen[i] for i in order], costs[order], values, per_sample, outputs)


def static_points(choices: StaticChoices, labels: np.ndarray) -> list[dict]:
    """The summary's ``static`` list: every choice (only the Pareto ones when there are many)."""
    metric = "map" if labels.ndim == 2 else "top1"
    values = choices.values
    keep = np.arange(len(values))
    if len(values) > MAX_LISTED:
        best = np.maximum.accumulate(values)
        keep = np.flatnonzero(values >= best - 1e-12)
    return [{"members": list(choices.members[i]), "gflops": float(choices.gflops[i]), metric: float(values[i])} for i in keep]


def static_hull(points: list[dict], metric: str) -> list[dict]:
    """Upper hull of static points: what randomly mixing static choices reaches."""
    c, a = upper_hull(np.array([p["gflops"] for p in points]), np.array([p[metric] for p in points]))
    return [{"gflops": float(x), metric: float(y)} for x, y in zip(c, a)]


def fusion_oracle(choices: StaticChoices, labels: np.ndarray, points: int = MAP_POINTS, workers: int = 1) -> list[dict]:
    """Per sample, the cheapest static choice that is right (lowest loss for multi-label), cheapest upgrades first.

    Multi-label points are evaluated by ``workers`` forked processes.
    """
    if labels.ndim == 1:
        cost, acc = oracle_curve(choices.per_sample, choices.gflops)
        idx = np.unique(np.linspace(0, len(cost) - 1, min(500, len(cost))).round().astype(int))
        return [{"gflops": float(cost[i]), "top1": float(100 * acc[i])} for i in idx]
    best = choices.per_sample.argmin(axis=1)
    upgrade = np.argsort(choices.gflops[best] - choices.gflops[0], kind="stable")
    labels = column_labels(labels)

    def point(upgraded: int) -> dict:
        picks = np.zeros(len(labels), dtype=np.int64)
        picks[upgrade[:upgraded]] = best[upgrade[:upgraded]]
        scores = gather(lambda j, rows: choices.probs(j, rows), picks)
        return {"gflops": float(choices.gflops[picks].mean()), "map": float(100 * mean_average_precision(scores, labels))}

    return forked_map(point, np.unique(np.linspace(0, len(labels), points).round().astype(int)).tolist(), workers)
