"""Choosing a selector's backbone on training folds only, when the user does not name one.

Candidates are the members on some outer training split's single-model
Pareto front (a dominated member is a worse backbone than the one dominating
it: it costs as much and tells the selector less). Each candidate is
cross-fitted once, nested, with the policy itself (no proxy). For outer fold
k, the candidate whose inner-CV front (fits that never saw fold k) is best
over [cheapest, costliest member] is chosen, and its outer fit k routes fold
k. The held-out figures therefore stay held out, and the candidates'
cross-fits are reused as they are: no fit is made twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from condsel.selection.data.table import PredictionTable
from condsel.selection.evaluation.crossfit import CrossFits, inner_curves
from condsel.selection.method.curves import curve_at, pareto_front
from condsel.selection.method.policies.base import Policy, single_values

log = logging.getLogger(__name__)


def front_score(costs: np.ndarray, values: np.ndarray, lo: float, hi: float, floor: float, grid: int = 256) -> float:
    """Mean metric of a curve's Pareto front over costs [lo, hi]; below its first point it counts as ``floor``."""
    c, v = pareto_front(np.asarray(costs), np.asarray(values))
    at = curve_at(c, v, np.linspace(lo, hi, grid))
    return float(np.where(np.isnan(at), floor, at).mean())


def pareto_members(table: PredictionTable) -> list[str]:
    """The members on ``table``'s single-model front of cost and training value (minus the mean loss for multi-label), in table order."""
    gflops = {m: table.gflops[m] for m in table.models}
    single = single_values(table, exact=False)
    c, v = pareto_front(np.array(list(gflops.values())), np.array(list(single.values())))
    return [m for m in table.models if any(gflops[m] == x and single[m] == y for x, y in zip(c, v))]


def backbone_candidates(table: PredictionTable, folds: np.ndarray) -> dict[int, list[str]]:
    """Per outer fold, the Pareto members of its training folds."""
    return {int(k): pareto_members(table.subset(np.flatnonzero(folds != k))) for k in np.unique(folds)}


@dataclass(frozen=True)
class BackboneChoice:
    """Per outer fold, the backbone chosen on its training folds; every candidate's fits; the chosen ones combined."""

    chosen: dict[int, str]
    candidates: dict[str, CrossFits]
    fits: CrossFits  # outer[k] and inner[(k, i)] from the candidate chosen for fold k

    @property
    def majority(self) -> str:
        """The backbone most outer folds chose (the first fold's among ties)."""
        return Counter(self.chosen[k] for k in sorted(self.chosen)).most_common(1)[0][0]


def choose_backbone(
    make: Callable[[str], Policy],
    table: PredictionTable,
    folds: np.ndarray,
    fit: Callable[[dict[str, Policy]], dict[str, CrossFits]],
    thresholds: np.ndarray,
    workers: int = 1,
) -> BackboneChoice:
    """Per outer fold, the candidate backbone whose nested estimate is best.

    ``make(backbone)`` is the policy with that backbone; ``fit`` cross-fits
    policies by name, nested (one cross-fit per candidate). Below the cost where a
    backbone's curve starts, the cheapest member alone is what a user gets,
    so its training metric fills that range. The estimates are made by
    ``workers`` forked processes.
    """
    per_fold = backbone_candidates(table, folds)
    names = [m for m in table.models if any(m in c for c in per_fold.values())]
    candidates = fit({m: make(m) for m in names})
    inner = inner_curves(candidates, table, thresholds, workers)
    chosen = {}
    for k, options in per_fold.items():
        train = table.subset(np.flatnonzero(folds != k))
        gflops = [train.gflops[m] for m in train.models]
        floor = single_values(train, [train.models[0]], exact=False)[train.models[0]]
        scores = {m: front_score(*inner[k][m], min(gflops), max(gflops), floor) for m in options}
        chosen[k] = max(options, key=lambda m: (scores[m], -train.gflops[m]))
        log.debug("fold %d: backbone %s (inner-CV front scores %s)", k, chosen[k], {m: round(s, 2) for m, s in scores.items()})
    first = candidates[names[0]]
    fits = CrossFits(
        folds,
        {k: candidates[b].outer[k] for k, b in chosen.items()},
        {(k, i): candidates[chosen[k]].inner[(k, i)] for k, i in first.inner},
    )
    return BackboneChoice(chosen, candidates, fits)
