"""Cascade routing: it chooses which member runs next, prunes only dominated sets, and beats every fixed order where order matters.

The online protocol, persistence and multi-label use are tested with every
policy in test_selection_policies.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ucf101_slice

from condsel.selection.data.generated import SPECIALIST_COSTS, specialist_pool
from condsel.selection.method.policies import CascadePolicy, RoutingPolicy, StaticPolicy, load_policy
from condsel.selection.method.policies.routing import competence_table, dominated_sets, state_features

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def best_within(points: list[dict], budget: float) -> float:
    return max(p["top1"] for p in points if p["gflops"] <= budget + 1e-9)


@pytest.fixture(scope="module")
def specialists():
    table = specialist_pool(2000, seed=1)
    return table.subset(np.arange(1000)), table.subset(np.arange(1000, 2000))


@pytest.mark.slow  # ~5 s: two cascade order searches over every order of four members
def test_routing_beats_every_fixed_order_where_order_matters(specialists):
    """At the cost of the small generalist plus one specialist, no fixed order (searched over every order, mean or stacked) comes near."""
    train, test = specialists
    budget = SPECIALIST_COSTS["generalist_small"] + SPECIALIST_COSTS["specialist_a"]
    routing = RoutingPolicy().fit(train)
    fixed = [CascadePolicy(fusion=f).fit(train) for f in ("mean", "stacked")] + [StaticPolicy().fit(train)]
    assert all(set(c.members_) <= set(train.models) for c in fixed)
    best_fixed = max(best_within(p.sweep(test), budget) for p in fixed)
    routed = best_within(routing.sweep(test), budget)
    assert routed >= best_fixed + 5.0, (routed, best_fixed)
    # it gets there by sending each video to the specialist of the half the small generalist saw
    routes = routing.route(test, float(np.interp(np.log(budget), np.log(routing.cost_scale_), [0, 1])))
    column = {m: i for i, m in enumerate(routing.members_)}
    first_half = test.labels < test.num_classes // 2
    ran_a, ran_b = routes.ran[:, column["specialist_a"]], routes.ran[:, column["specialist_b"]]
    assert ran_a[first_half].mean() > 0.7 and ran_b[~first_half].mean() > 0.7
    assert ran_a[~first_half].mean() < 0.3 and ran_b[first_half].mean() < 0.3


def test_dominance_is_per_sample_so_complementary_specialists_survive():
    costs = np.array([1.0, 2.0, 2.0, 3.0])
    utility = np.array([
        [1, 0, 0, 0, 1, 0],  # cheap
        [1, 1, 1, 0, 0, 0],  # specialist a: right on the first half
        [0, 0, 0, 1, 1, 1],  # specialist b: same cost and accuracy, right on the other half
        [1, 1, 0, 0, 0, 0],  # dearer and right only where a is right
    ], dtype=np.float64)
    assert dominated_sets(costs, utility, slack=0.0) == {3: 1}
    # a slack of one sample in six: the cheap set misses one of the last set's hits, but two of a's and two of b's
    assert dominated_sets(costs, utility, slack=1 / 6) == {3: 0}
    assert dominated_sets(costs, utility, slack=2 / 6) == {1: 0, 2: 0, 3: 0}


def test_competence_prior_shrinks_per_class_accuracy_toward_the_overall_one():
    hits = np.array([[1, 1, 0, 0, 1], [0, 0, 0, 1, 1]], dtype=bool)
    labels = np.array([0, 0, 0, 1, 1])
    prior, per_class, counts = competence_table(hits, labels, classes=3, strength=2.0)
    # member 0: class 0 has 2 hits of 3, overall 3/5 -> (2 + 2 * 0.6) / (3 + 2)
    assert prior[0, 0] == pytest.approx((2 + 1.2) / 5)
    assert prior[1, 1] == pytest.approx((2 + 2 * 0.4) / (2 + 2))
    assert prior[0, 2] == pytest.approx(0.6)  # a class never seen: the overall accuracy
    np.testing.assert_array_equal(counts, [3, 2, 0])


def test_state_features_read_no_class_identity():
    """Permuting the classes of every output alike leaves a state's features unchanged (competence aside)."""
    rng = np.random.default_rng(0)
    probs = [rng.dirichlet(np.ones(7), size=20) for _ in range(2)]
    fused = (probs[0] + probs[1]) / 2
    perm = rng.permutation(7)
    a = state_features(probs, fused, None, multilabel=False)
    b = state_features([p[:, perm] for p in probs], fused[:, perm], None, multilabel=False)
    np.testing.assert_allclose(a, b, atol=1e-12)
    assert a.shape[1] == 2 * 7 + 5 + 2  # per member 7, fused 5, agreement and JS divergence


def test_the_training_target_is_chosen_on_held_out_halves_and_saved(tmp_path):
    table = ucf101_slice(1, 700)
    policy = RoutingPolicy(target="auto").fit(table)
    assert set(policy.target_scores_) == {"right", "gain"}
    assert policy.target_ == max(policy.target_scores_, key=policy.target_scores_.get)
    policy.save(tmp_path / "p")
    loaded = load_policy(tmp_path / "p")
    assert loaded.target_ == policy.target_ and loaded.target_scores_ == policy.target_scores_
    assert loaded.pruned_sets_ == policy.pruned_sets_
    # both targets route; a fixed one is kept as given
    assert RoutingPolicy(target="gain").fit(table, choose_default=False).target_ == "gain"


def test_routing_spends_the_budget_by_mixing_neighbouring_cost_weights():
    table = ucf101_slice(2, 900)
    train, test = table.subset(np.arange(600)), table.subset(np.arange(600, 900))
    policy = RoutingPolicy(target="right").fit(train, choose_default=False)
    costs = np.array([p["gflops"] for p in policy.lambda_front_])
    assert np.all(np.diff(costs) > 0)
    middle = 0.5 * (costs[0] + costs[-1])
    t = float(np.log(middle / policy.cost_scale_[0]) / np.log(policy.cost_scale_[1] / policy.cost_scale_[0]))
    spent = policy.route(train, t).gflops.mean()
    assert spent == pytest.approx(middle, rel=0.05)  # on its training samples the mix meets the budget
    assert policy.route(test, t).gflops.mean() <= middle * 1.15


@pytest.mark.parametrize("bad", [{"target": "nonsense"}, {"fusion": "max"}])
def test_bad_hyperparameters_are_rejected(bad):
    with pytest.raises(ValueError, match=next(iter(bad.values()))):
        RoutingPolicy(**bad).fit(ucf101_slice(0, 200))
