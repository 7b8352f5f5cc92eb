"""The vectorized sweep against a plain loop, and the baselines on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from condsel.selection.method.curves import (
    choice_fractions,
    choose_models,
    oracle_curve,
    pareto_front,
    random_selection,
    selection_costs,
    sweep,
    upper_hull,
)


def test_choose_models_takes_the_cheapest_confident_model():
    proba = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.2, 0.3, 0.5], [0.34, 0.33, 0.33]])
    assert choose_models(proba, 0.4).tolist() == [0, 1, 2, 2]  # none >= 0.4 in the last row: costliest
    assert choose_models(proba, 0.0).tolist() == [0, 0, 0, 0]


def test_sweep_equals_a_loop_over_thresholds():
    rng = np.random.default_rng(1)
    n, k = 400, 4
    proba = rng.dirichlet(np.ones(k), size=n)
    proba[:50] = np.round(proba[:50], 1)  # ties with the thresholds
    values = rng.random((n, k))
    weights = rng.integers(0, 4, size=n).astype(float)
    thresholds = np.linspace(0, 1, 101)
    fast = sweep(proba, values, thresholds, weights)
    slow = [np.sum(weights * values[np.arange(n), choose_models(proba, t)]) / weights.sum() for t in thresholds]
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)
    fractions = choice_fractions(proba, thresholds)
    np.testing.assert_allclose(fractions.sum(1), 1.0)
    np.testing.assert_allclose(fractions[40], np.bincount(choose_models(proba, thresholds[40]), minlength=k) / n)


def test_selection_costs_include_backbone_and_selector():
    np.testing.assert_allclose(selection_costs(np.array([1.0, 4.0, 10.0]), 0.5), [1.5, 5.5, 11.5])


def test_oracle_hand_case():
    # 4 samples, models cost (backbone-inclusive) 1, 3, 6
    correct = np.array([[1, 1, 1], [0, 0, 1], [0, 1, 1], [0, 0, 0]], dtype=bool)
    cost, acc = oracle_curve(correct, np.array([1.0, 3.0, 6.0]))
    np.testing.assert_allclose(cost, [1.0, 1.5, 2.75])  # upgrade sample 2 (+2), then sample 1 (+5)
    np.testing.assert_allclose(acc, [0.25, 0.5, 0.75])


def test_upper_hull_and_pareto():
    c, a = upper_hull(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([50.0, 52.0, 70.0, 75.0, 74.0]))
    np.testing.assert_allclose(c, [1.0, 3.0, 4.0])  # (2, 52) is under the chord, (5, 74) past the best
    pc, pa = pareto_front(np.array([3.0, 1.0, 2.0, 2.0]), np.array([5.0, 1.0, 0.5, 4.0]))
    np.testing.assert_allclose(pc, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(pa, [1.0, 4.0, 5.0])


def test_random_selection_matches_shares_and_expected_accuracy():
    rng = np.random.default_rng(0)
    correct = rng.random((5000, 3)) < np.array([0.5, 0.7, 0.9])
    fractions = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5], [0.0, 0.0, 1.0]])
    mean, std = random_selection(correct, fractions, seeds=20, seed=0)
    expected = fractions @ correct.mean(0)
    np.testing.assert_allclose(mean, expected, atol=0.01)
    assert std[0] == pytest.approx(0.0) and std[2] == pytest.approx(0.0) and std[1] > 0
