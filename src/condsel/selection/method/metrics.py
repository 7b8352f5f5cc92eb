"""Accuracy metrics: per-sample top-k hits and multi-label mAP."""

from __future__ import annotations

import numpy as np


def topk_correct(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> np.ndarray:
    """(N,) bool: the label is among the k highest scores (HIT@k)."""
    scores = np.asarray(scores)
    if k == 1:
        return scores.argmax(axis=1) == labels
    true_score = scores[np.arange(len(labels)), labels]
    # rank = number of classes scoring strictly higher; ties resolved in the label's favour
    return (scores > true_score[:, None]).sum(axis=1) < k


def average_precision(scores: np.ndarray, positives: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Non-interpolated AP, sum over thresholds of (R_n - R_{n-1}) P_n, ties grouped.

    This is the definition scikit-learn's ``average_precision_score`` uses.
    """
    w = np.ones(len(scores)) if weights is None else np.asarray(weights, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    s, y, w = scores[order], positives[order].astype(np.float64), w[order]
    tp = np.cumsum(y * w)
    seen = np.cumsum(w)
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp, seen = tp[last_of_tie], seen[last_of_tie]
    if tp[-1] <= 0:
        return float("nan")
    recall = tp / tp[-1]
    precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def mean_average_precision(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    """mAP over the classes that have at least one positive sample, in [0, 1]."""
    aps = [
        average_precision(scores[:, c], labels[:, c], weights)
        for c in range(labels.shape[1])
        if labels[:, c].any()
    ]
    aps = [a for a in aps if not np.isnan(a)]
    return float(np.mean(aps)) if aps else float("nan")
