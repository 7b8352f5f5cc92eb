"""Metrics against scikit-learn and brute force."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score

from condsel.selection.method.metrics import average_precision, mean_average_precision, topk_correct


def test_average_precision_equals_sklearn_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.random(200) < 0.2
        s = np.round(rng.random(200), 1)  # many ties
        assert average_precision(s, y) == average_precision_score(y, s) or abs(average_precision(s, y) - average_precision_score(y, s)) < 1e-12


def test_mean_average_precision_equals_sklearn_macro():
    rng = np.random.default_rng(1)
    labels = (rng.random((300, 12)) < 0.15).astype(int)
    labels[:, 5] = 0  # a class with no positives is skipped, as sklearn cannot score it
    scores = rng.normal(size=(300, 12)) + 1.5 * labels
    keep = labels.any(0)
    expected = average_precision_score(labels[:, keep], scores[:, keep], average="macro")
    assert abs(mean_average_precision(scores, labels) - expected) < 1e-12


def test_topk_by_brute_force():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(500, 20))
    labels = rng.integers(0, 20, 500)
    for k in (1, 5):
        brute = np.array([labels[i] in np.argsort(-scores[i])[:k] for i in range(500)])
        np.testing.assert_array_equal(topk_correct(scores, labels, k), brute)
