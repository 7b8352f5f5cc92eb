"""How well the selector does its own job: calibration, confusions, label balance.

Definitions (all on out-of-fold predictions):
- confidence = max_k P(M_k | x), the selector's top probability, and its top
  model k* = argmax_k P(M_k | x);
- reliability against the labels: in each confidence bin, the share of videos
  whose k* is their affinity-label model (Eq. 2). The selector is trained with
  cross-entropy on those labels, so a calibrated selector lies on the diagonal;
- reliability against the task: the share of videos that k* classifies
  correctly (not a calibration target: the affinity label trades accuracy for
  cost, so this may sit above the diagonal);
- confusion: rows = affinity-label model, columns = the model the threshold
  rule chooses at the operating threshold (what actually runs);
- ``top_model_agreement`` (share of videos whose k* is their label) is to be
  read against ``majority_label_rate``, what always answering the commonest
  label would score.
"""

from __future__ import annotations

import numpy as np

from condsel.selection.method.curves import choose_models
from condsel.selection.evaluation.evaluate import OutOfFold
from condsel.selection.data.table import PredictionTable


def reliability(confidence: np.ndarray, hit: np.ndarray, bins: int = 10) -> dict:
    """Uniform confidence bins on [0, 1]: count, mean confidence and hit rate per bin, and the ECE.

    A confidence on a bin edge falls in the bin below it (scikit-learn's
    ``calibration_curve`` convention). ECE = sum over bins of
    (count / N) x |hit rate - mean confidence|.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(hit, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.searchsorted(edges[1:-1], confidence)
    count = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, confidence, minlength=bins)
    hit_sum = np.bincount(which, hit, minlength=bins)
    filled = count > 0
    mean_conf = np.divide(conf_sum, count, out=np.full(bins, np.nan), where=filled)
    rate = np.divide(hit_sum, count, out=np.full(bins, np.nan), where=filled)
    ece = float(np.sum(count[filled] / len(confidence) * np.abs(rate[filled] - mean_conf[filled])))
    return {
        "edges": edges.tolist(),
        "count": count.tolist(),
        "confidence": [None if np.isnan(v) else float(v) for v in mean_conf],
        "rate": [None if np.isnan(v) else float(v) for v in rate],
        "ece": ece,
    }


def selector_diagnostics(
    table: PredictionTable, oof: OutOfFold, threshold: float, bins: int = 10
) -> dict:
    """Reliability diagrams, the label-vs-chosen confusion at ``threshold`` and the label distribution."""
    k = len(oof.order)
    label = oof.policy.affinity(table, oof.order).argmax(axis=1)
    top = oof.proba.argmax(axis=1)
    confidence = oof.proba.max(axis=1)
    correct = None if table.multilabel else oof.hits(table)[np.arange(len(top)), top]
    chosen = choose_models(oof.proba, threshold)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (label, chosen), 1)
    return {
        "pool": oof.order,
        "alpha": oof.policy.alpha,
        "threshold": float(threshold),
        "reliability_vs_label": reliability(confidence, top == label, bins),
        "reliability_vs_correct": None if correct is None else reliability(confidence, correct, bins),
        "top_model_agreement": float(np.mean(top == label)),
        "majority_label_rate": float(np.bincount(label, minlength=k).max() / len(label)),
        "confusion": confusion.tolist(),
        "confusion_rows": "affinity-label model",
        "confusion_columns": f"model chosen at threshold {threshold:.3f}",
        "label_share": {m: float(np.mean(label == i)) for i, m in enumerate(oof.order)},
        "chosen_share": {m: float(np.mean(chosen == i)) for i, m in enumerate(oof.order)},
        "top_share": {m: float(np.mean(top == i)) for i, m in enumerate(oof.order)},
        "protocol": oof.protocol,
    }
