"""Metrics against scikit-learn and brute force."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score

from condsel.selection.method.metrics import average_precision, class_average_precisions, mean_average_precision, topk_correct


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
    aps = class_average_precisions(scores, labels, block=300 * 2)  # blocks of two classes, placed around the empty one
    assert np.isnan(aps[5])
    np.testing.assert_allclose(np.delete(aps, 5), [average_precision_score(labels[:, c], scores[:, c]) for c in range(12) if c != 5], atol=1e-12)


def test_mean_average_precision_with_ties_and_weights_equals_sklearn_per_class():
    rng = np.random.default_rng(3)
    labels = (rng.random((400, 9)) < 0.2).astype(int)
    scores = np.round(rng.normal(size=(400, 9)) + labels, 1)  # many ties in every column
    weights = rng.integers(0, 4, 400).astype(float)  # bootstrap-like multiplicities, zeros included
    expected = np.mean([average_precision_score(labels[:, c], scores[:, c], sample_weight=weights) for c in range(9)])
    assert abs(mean_average_precision(scores, labels, weights) - expected) < 1e-12
    # classes are processed in blocks; the block size must not change a value
    assert class_average_precisions(scores, labels, weights, block=400 * 2).tolist() == class_average_precisions(scores, labels, weights).tolist()


def test_topk_by_brute_force():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(500, 20))
    labels = rng.integers(0, 20, 500)
    for k in (1, 5):
        brute = np.array([labels[i] in np.argsort(-scores[i])[:k] for i in range(500)])
        np.testing.assert_array_equal(topk_correct(scores, labels, k), brute)
