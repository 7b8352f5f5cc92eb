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

from condsel.selection.curves import oracle_curve, pareto_front, upper_hull
from condsel.selection.fusion import MemberOutputs, fused_loss
from condsel.selection.metrics import mean_average_precision
from condsel.selection.table import PredictionTable

MAX_LISTED = 100  # beyond this many subsets only the Pareto ones are listed


@dataclass(frozen=True)
class StaticChoices:
    """Every static choice, by ascending cost: members, cost, fused probabilities."""

    members: list[tuple[str, ...]]
    gflops: np.ndarray  # (S,)
    probs: list[np.ndarray]  # S arrays (N, C)

    def metric(self, labels: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """(S,) top-1 or mAP (%) of each choice, on ``rows`` (default all)."""
        rows = slice(None) if rows is None else rows
        if labels.ndim == 2:
            return np.array([100 * mean_average_precision(p[rows], labels[rows]) for p in self.probs])
        return 100 * self.hits(labels)[rows].mean(axis=0)

    def hits(self, labels: np.ndarray) -> np.ndarray:
        """(N, S) per-sample top-1 hits (single-label)."""
        return np.stack([p.argmax(axis=1) == labels for p in self.probs], axis=1)

    def losses(self, labels: np.ndarray) -> np.ndarray:
        """(N, S) per-sample cross-entropy (BCE for multi-label) of each choice's fused probabilities."""
        return np.stack([fused_loss(p, labels) for p in self.probs], axis=1)


def subsets(members: list[str], max_size: int = 3) -> list[tuple[str, ...]]:
    """Every non-empty subset of up to ``max_size`` members, each in the given member order."""
    return [c for size in range(1, min(max_size, len(members)) + 1) for c in itertools.combinations(members, size)]


def static_choices(table: PredictionTable, max_size: int = 3, members: list[str] | None = None) -> StaticChoices:
    """Every single member and fused subset (mean of probabilities) of ``members`` (default: all), by ascending cost."""
    members = table.models if members is None else members
    chosen = subsets(members, max_size)
    costs = np.array([sum(table.gflops[m] for m in c) for c in chosen])
    order = np.argsort(costs, kind="stable")
    outputs = MemberOutputs(table.logits, table.multilabel)
    probs = [outputs.fuse(chosen[i]) for i in order]
    return StaticChoices([chosen[i] for i in order], costs[order], probs)


def static_points(choices: StaticChoices, labels: np.ndarray) -> list[dict]:
    """The summary's ``static`` list: every choice (only the Pareto ones when there are many)."""
    metric = "map" if labels.ndim == 2 else "top1"
    values = choices.metric(labels)
    keep = np.arange(len(values))
    if len(values) > MAX_LISTED:
        best = np.maximum.accumulate(values)
        keep = np.flatnonzero(values >= best - 1e-12)
    return [{"members": list(choices.members[i]), "gflops": float(choices.gflops[i]), metric: float(values[i])} for i in keep]


def static_hull(points: list[dict], metric: str) -> list[dict]:
    """Upper hull of static points: what randomly mixing static choices reaches."""
    c, a = upper_hull(np.array([p["gflops"] for p in points]), np.array([p[metric] for p in points]))
    return [{"gflops": float(x), metric: float(y)} for x, y in zip(c, a)]


def static_front(points: list[dict], metric: str) -> list[dict]:
    """The Pareto-optimal static points, ascending cost."""
    c = np.array([p["gflops"] for p in points])
    a = np.array([p[metric] for p in points])
    fc, fa = pareto_front(c, a)
    by_point = {(p["gflops"], p[metric]): p for p in points}
    return [by_point[(x, y)] for x, y in zip(fc, fa)]


def fusion_oracle(choices: StaticChoices, labels: np.ndarray, points: int = 51) -> list[dict]:
    """Per sample, the cheapest static choice that is right (lowest loss for multi-label), cheapest upgrades first."""
    if labels.ndim == 1:
        cost, acc = oracle_curve(choices.hits(labels), choices.gflops)
        idx = np.unique(np.linspace(0, len(cost) - 1, min(500, len(cost))).round().astype(int))
        return [{"gflops": float(cost[i]), "top1": float(100 * acc[i])} for i in idx]
    best = choices.losses(labels).argmin(axis=1)
    extra = choices.gflops[best] - choices.gflops[0]
    upgrade = np.argsort(extra, kind="stable")
    rows = np.arange(len(labels))
    stacked = np.stack(choices.probs)
    out = []
    for n_up in np.unique(np.linspace(0, len(labels), points).round().astype(int)):
        picks = np.zeros(len(labels), dtype=np.int64)
        picks[upgrade[:n_up]] = best[upgrade[:n_up]]
        out.append({"gflops": float(choices.gflops[picks].mean()), "map": float(100 * mean_average_precision(stacked[picks, rows], labels))})
    return out

