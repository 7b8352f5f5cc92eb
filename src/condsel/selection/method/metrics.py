"""Accuracy metrics: per-sample top-k hits and multi-label mAP."""

from __future__ import annotations

import numpy as np

MAP_POINTS = 26  # points of a multi-label curve (thresholds, oracle steps): each needs a full ranking of N x C scores


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

    With ties grouped, AP is the weighted mean over a column's positives of
    the precision at their score: (positive weight scoring at least as high)
    / (all weight scoring at least as high). So only positives are visited:
    columns are sorted in blocks of about ``block`` scores and each positive
    is placed by binary search, which makes labels as sparse as HVU's cost
    little beyond one sort.
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    n, c = scores.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    out = np.full(c, np.nan)
    present = np.flatnonzero(labels.any(axis=0))  # columns without positives stay NaN, unsorted
    step = max(1, block // max(n, 1))
    for start in range(0, len(present), step):
        cols = present[start:start + step]  # read a block of columns at a time: no copy of the whole matrix
        s, positive = scores.T[cols], labels.T[cols] != 0  # (B, N)
        if weights is None:  # all weights 1: the weight at or above sorted position i is n - i
            ordered, above = np.sort(s, axis=1), np.broadcast_to(np.arange(n, -1, -1, dtype=np.float64), (len(s), n + 1))
        else:
            order = np.argsort(s, axis=1)
            ordered, above = np.take_along_axis(s, order, axis=1), _weight_at_or_above(w[order])
        for j, col in enumerate(cols):
            pos = np.flatnonzero(positive[j])
            out[col] = _mean_precision(s[j, pos], w[pos], above[j, np.searchsorted(ordered[j], s[j, pos])])
    return out


def _weight_at_or_above(sorted_weights: np.ndarray) -> np.ndarray:
    """(..., n + 1): the weight at ascending-sorted positions i and beyond (0 past the end)."""
    tail = np.cumsum(sorted_weights[..., ::-1], axis=-1)[..., ::-1]
    return np.concatenate([tail, np.zeros(tail.shape[:-1] + (1,))], axis=-1)


def _mean_precision(positive_scores: np.ndarray, positive_weights: np.ndarray, at_or_above: np.ndarray) -> float:
    """Weighted mean precision at each positive's score, given the total weight scoring at least as high."""
    total = positive_weights.sum()
    if total <= 0:
        return float("nan")
    order = np.argsort(positive_scores)
    ranked = positive_scores[order]
    hits = _weight_at_or_above(positive_weights[order])[np.searchsorted(ranked, positive_scores)]
    precision = np.divide(hits, at_or_above, out=np.zeros_like(hits), where=at_or_above > 0)
    return float((positive_weights * precision).sum() / total)


def column_labels(labels: np.ndarray) -> np.ndarray:
    """A 0/1 label matrix as :func:`class_average_precisions` reads it fastest (bool, stored by column): convert once when it is read many times."""
    return np.asfortranarray(np.asarray(labels) != 0)


def mean_average_precision(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    """mAP over the classes that have at least one positive sample, in [0, 1]."""
    aps = class_average_precisions(scores, labels, weights)
    aps = aps[~np.isnan(aps)]
    return float(aps.mean()) if aps.size else float("nan")
