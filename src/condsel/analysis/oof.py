"""Out-of-fold selector probabilities: what the per-sample analyses read.

:func:`condsel.evaluate.cross_validate` returns only the summary; per-class
compute and the selector diagnostics need the probability of every model for
every video as well. This runs the same folds with the same selector recipe
(``fold_ids``, ``fit_selector``) and keeps the probabilities, and
:func:`summary_of` turns them into exactly the summary ``cross_validate``
would have written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from condsel.curves import selection_costs
from condsel.evaluate import SelectionConfig, build_summary, fit_selector, fold_ids, pool_order
from condsel.table import PredictionTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutOfFold:
    order: list[str]  # pool order: the backbone, then the others by ascending cost
    proba: np.ndarray  # (N, K) each video's selector probabilities, from the fold that held it out
    selector_gflops: float
    calibration: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (train idx, train proba, test idx) per fold
    protocol: dict

    def costs(self, table: PredictionTable) -> np.ndarray:
        """(K,) GFLOPs per video when each model is chosen: backbone and selector included."""
        return selection_costs(np.array([table.gflops[m] for m in self.order]), self.selector_gflops)


def out_of_fold(table: PredictionTable, backbone: str, config: SelectionConfig) -> OutOfFold:
    order = pool_order(table, backbone)
    folds = fold_ids(table, config.folds, config.seed)
    backbone_logits = table.logits[order[0]]
    proba = np.zeros((table.num_samples, len(order)), dtype=np.float64)
    calibration = []
    selector_gflops = 0.0
    for k in range(config.folds):
        train, test = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        log.debug("backbone %s, alpha %g: fold %d/%d", backbone, config.alpha, k + 1, config.folds)
        selector = fit_selector(table.subset(train), order, config)
        proba[test] = selector.predict_proba(selector.features(backbone_logits[test]))
        calibration.append((train, selector.predict_proba(selector.features(backbone_logits[train])), test))
        selector_gflops = selector.gflops()
    protocol = {
        "kind": f"{config.folds}-fold cross-validation, out-of-fold predictions",
        "grouped_by": "UCF101 group (gXX)" if table.groups is not None else "sample",
        "folds": config.folds,
        "seed": config.seed,
        "samples": table.num_samples,
    }
    return OutOfFold(order, proba, selector_gflops, calibration, protocol)


def summary_of(table: PredictionTable, oof: OutOfFold, config: SelectionConfig) -> dict:
    """The ``summary.json`` dict of these out-of-fold predictions (curves, baselines, CIs, budgets)."""
    return build_summary(table, oof.order, oof.proba, oof.selector_gflops, config, oof.calibration, oof.protocol)


class OutOfFoldRuns:
    """Cross-validation runs on one table, memoised: analyses that share a (backbone, config) train once."""

    def __init__(self, table: PredictionTable) -> None:
        self.table = table
        self._done: dict[tuple[str, str], tuple[OutOfFold, dict]] = {}

    def __call__(self, backbone: str, config: SelectionConfig) -> tuple[OutOfFold, dict]:
        """Out-of-fold predictions and their summary for this backbone and configuration."""
        key = (backbone, repr(config))
        if key not in self._done:
            oof = out_of_fold(self.table, backbone, config)
            self._done[key] = (oof, summary_of(self.table, oof, config))
        return self._done[key]
