"""Affinity labels (Eq. 2): a hand-computed case and properties on real UCF101 scores."""

from __future__ import annotations

import numpy as np
import pytest

from condsel.selection.method.affinity import (
    classification_loss,
    hard_affinity,
    loss_matrix,
    normalized_costs,
    soft_affinity,
)
from condsel.datasets.ucf101 import load_ucf101_split1, ucf101_costs


def test_cross_entropy_and_bce_by_hand():
    logits = np.array([[2.0, 0.0, 0.0]])
    ce = classification_loss(logits, np.array([0]))
    assert ce[0] == pytest.approx(-np.log(np.exp(2) / (np.exp(2) + 2)))
    bce = classification_loss(np.array([[0.0, 3.0]]), np.array([[1, 0]]))
    expected = (np.log(2) + np.log(1 + np.exp(3))) / 2
    assert bce[0] == pytest.approx(expected)


def test_eq2_hand_case():
    losses = np.array([[0.5, 0.2, 0.1], [2.0, 1.9, 0.3], [0.1, 0.1, 0.1]])
    F = normalized_costs(np.array([1.0, 2.0, 7.0]))  # 0.1, 0.2, 0.7
    # alpha = 1: penalized rows [0.6, 0.4, 0.8], [2.1, 2.1, 1.0], [0.2, 0.3, 0.8]
    G = hard_affinity(losses, F, alpha=1.0)
    assert G.argmax(1).tolist() == [1, 2, 0]
    # ties go to the cheapest model
    assert hard_affinity(np.zeros((1, 3)), F, alpha=0.0).argmax(1).tolist() == [0]


@pytest.fixture(scope="module")
def ucf():
    table = load_ucf101_split1()
    costs, _ = ucf101_costs()
    order = ["mv", "flow", "residual", "gen_flow", "iframe"]
    losses = loss_matrix([table.logits[m] for m in order], table.labels)
    gflops = np.array([costs[m] for m in order])
    return losses, gflops


def test_alpha_zero_picks_the_lowest_loss_model(ucf):
    losses, gflops = ucf
    G = hard_affinity(losses, normalized_costs(gflops), 0.0)
    np.testing.assert_array_equal(G.argmax(1), losses.argmin(1))


def test_larger_alpha_never_raises_the_mean_cost_of_the_labels(ucf):
    losses, gflops = ucf
    F = normalized_costs(gflops)
    mean_costs = [(hard_affinity(losses, F, a) @ gflops).mean() for a in (0.0, 0.1, 0.5, 1, 2, 5, 20, 1e6)]
    assert all(b <= a + 1e-9 for a, b in zip(mean_costs, mean_costs[1:]))
    assert mean_costs[-1] == pytest.approx(gflops.min())  # huge alpha: always the cheapest


def test_soft_labels_tend_to_hard_labels(ucf):
    losses, gflops = ucf
    F = normalized_costs(gflops)
    soft = soft_affinity(losses, F, 1.0, temperature=1e-4)
    hard = hard_affinity(losses, F, 1.0)
    penalized = np.sort(losses + F, axis=1)
    clear = penalized[:, 1] - penalized[:, 0] > 1e-3  # no near-tie between the two best models
    assert clear.mean() > 0.5
    np.testing.assert_array_equal(soft.argmax(1)[clear], hard.argmax(1)[clear])
    np.testing.assert_allclose(soft_affinity(losses, F, 1.0, 2.0).sum(1), 1.0, rtol=1e-5)
