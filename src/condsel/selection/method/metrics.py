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
    return float(class_average_precisions(np.asarray(scores)[:, None], np.asarray(positives)[:, None], weights)[0])


def class_average_precisions(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None, block: int = 1 << 22) -> np.ndarray:
    """(C,) :func:`average_precision` of every column of (N, C) ``scores``, NaN where a column has no positive weight.

    Vectorised over classes, in blocks of about ``block`` scores: a row's
    tie groups end where the sorted score changes; the true positives at the
    previous group's end are a running maximum of those at group ends.
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    n, c = scores.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    out = np.empty(c)
    step = max(1, block // max(n, 1))
    for start in range(0, c, step):
        s = np.ascontiguousarray(scores[:, start:start + step].T)  # (B, N)
        order = np.argsort(-s, axis=1, kind="stable")
        s = np.take_along_axis(s, order, axis=1)
        seen = np.cumsum(w[order], axis=1)
        tp = np.cumsum(np.take_along_axis(labels[:, start:start + step].T, order, axis=1) * w[order], axis=1)
        end = np.ones(s.shape, dtype=bool)
        end[:, :-1] = s[:, 1:] != s[:, :-1]
        at_end = np.where(end, tp, 0.0)
        before = np.hstack([np.zeros((len(s), 1)), np.maximum.accumulate(at_end, axis=1)[:, :-1]])
        precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
        total = tp[:, -1]
        gained = np.where(end, (tp - before) * precision, 0.0).sum(axis=1)
        out[start:start + step] = np.where(total > 0, gained / np.where(total > 0, total, 1.0), np.nan)
    return out


def mean_average_precision(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    """mAP over the classes that have at least one positive sample, in [0, 1]."""
    labels = np.asarray(labels)
    present = np.flatnonzero(labels.any(axis=0))
    aps = class_average_precisions(np.asarray(scores)[:, present], labels[:, present], weights)
    aps = aps[~np.isnan(aps)]
    return float(aps.mean()) if aps.size else float("nan")
