"""Choosing the selector's backbone on training samples only, when the user does not name one."""

from __future__ import annotations

import logging

import numpy as np

from condsel.selection.crossfit import fit_folds, oof_sweep
from condsel.selection.curves import curve_at, pareto_front
from condsel.selection.fusion import probabilities
from condsel.selection.policies import metric_name, metric_value
from condsel.selection.table import PredictionTable

log = logging.getLogger(__name__)


def front_score(points: list[dict], metric: str, lo: float, hi: float, floor: float, grid: int = 256) -> float:
    """Mean metric of a curve's Pareto front over costs [lo, hi]; below its first point it counts as ``floor``."""
    costs = np.array([p["gflops"] for p in points])
    values = np.array([p[metric] for p in points])
    c, v = pareto_front(costs, values)
    at = curve_at(c, v, np.linspace(lo, hi, grid))
    return float(np.where(np.isnan(at), floor, at).mean())


def choose_backbone(table: PredictionTable, config, inner_folds: int = 3) -> str:
    """The member whose selector has the best inner-cross-validated front over [cheapest, costliest member].

    Below the cost where a backbone's curve starts, the cheapest member alone
    is what a user gets, so its metric fills that range.
    """
    from condsel.selection.evaluate import fold_ids
    from condsel.selection.policies import SelectorPolicy

    metric = metric_name(table)
    gflops = {m: table.gflops[m] for m in table.logits}
    cheapest = min(gflops, key=gflops.get)
    floor = metric_value(probabilities(table.logits[cheapest], table.multilabel), table.labels)
    folds = fold_ids(table, inner_folds, config.seed)
    params = dict(
        alpha=config.alpha, temperature=config.temperature, selector_input=config.selector_input, hidden=config.hidden,
        epochs=config.epochs, lr=config.lr, batch_size=config.batch_size, seed=config.seed,
    )
    scores = {}
    for backbone in table.models:
        fits = fit_folds(lambda: SelectorPolicy(backbone=backbone, **params), table, folds)
        points = oof_sweep(fits, table, np.linspace(0, 1, 51))
        scores[backbone] = front_score(points, metric, min(gflops.values()), max(gflops.values()), floor)
    best = max(scores, key=lambda m: (scores[m], -gflops[m]))
    log.info("backbone chosen on training folds: %s (inner-CV front scores %s)", best, {m: round(s, 2) for m, s in scores.items()})
    return best
