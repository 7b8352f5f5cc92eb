"""Choosing a selector's backbone on training samples only, when the user does not name one.

Candidates are the members on the training samples' single-model Pareto
front (a dominated member is a worse backbone than the one dominating it: it
costs as much and tells the selector less). Each candidate's selector curve
is estimated by inner cross-validation with a cheap proxy, a linear selector
trained full-batch, which ranks backbones at a fraction of the MLP's cost.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from condsel.selection.evaluation.crossfit import cross_fit, held_out_curve
from condsel.selection.evaluation.curves import curve_at, pareto_front
from condsel.selection.method.policies.base import single_values
from condsel.selection.data.table import PredictionTable

log = logging.getLogger(__name__)

PROXY = dict(hidden=(), epochs=60, lr=0.05, milestones=(), batch_size=1 << 30)
_CHOSEN: dict[str, str] = {}  # the choice is deterministic: policies fitted on the same training samples share it


def front_score(costs: np.ndarray, values: np.ndarray, lo: float, hi: float, floor: float, grid: int = 256) -> float:
    """Mean metric of a curve's Pareto front over costs [lo, hi]; below its first point it counts as ``floor``."""
    c, v = pareto_front(np.asarray(costs), np.asarray(values))
    at = curve_at(c, v, np.linspace(lo, hi, grid))
    return float(np.where(np.isnan(at), floor, at).mean())


def choose_backbone(table: PredictionTable, selector_input: str = "sorted", seed: int = 0, inner_folds: int = 3) -> str:
    """The Pareto member whose (proxy) selector has the best inner-CV front over [cheapest, costliest member].

    Below the cost where a backbone's curve starts, the cheapest member alone
    is what a user gets, so its metric fills that range.
    """
    from condsel.selection.evaluation.evaluate import fold_ids
    from condsel.selection.method.policies.selector import SelectorPolicy

    key = _fingerprint(table, selector_input, seed, inner_folds)
    if key in _CHOSEN:
        return _CHOSEN[key]
    gflops = {m: table.gflops[m] for m in table.models}
    single = single_values(table)
    c, v = pareto_front(np.array(list(gflops.values())), np.array(list(single.values())))
    candidates = [m for m in table.models if any(gflops[m] == x and single[m] == y for x, y in zip(c, v))]
    if len(candidates) == 1:
        return candidates[0]
    cheapest = table.models[0]
    groups = len(np.unique(table.groups if table.groups is not None else table.names))
    if groups < 2:
        return candidates[0]
    folds = fold_ids(table, min(inner_folds, groups), seed)
    scores = {}
    for backbone in candidates:
        fits = cross_fit(lambda: SelectorPolicy(backbone=backbone, selector_input=selector_input, seed=seed, **PROXY), table, folds, nested=False)
        costs, values = held_out_curve(fits, table, np.linspace(0, 1, 51))
        scores[backbone] = front_score(costs, values, min(gflops.values()), max(gflops.values()), single[cheapest])
    best = max(scores, key=lambda m: (scores[m], -gflops[m]))
    if len(_CHOSEN) > 256:
        _CHOSEN.clear()
    _CHOSEN[key] = best
    log.debug("backbone chosen on training samples: %s (inner-CV front scores %s)", best, {m: round(s, 2) for m, s in scores.items()})
    return best


def _fingerprint(table: PredictionTable, *settings) -> str:
    digest = hashlib.blake2b(repr((settings, sorted(table.gflops.items()))).encode(), digest_size=16)
    for array in (table.names, table.labels, *(table.logits[m] for m in sorted(table.logits))):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
