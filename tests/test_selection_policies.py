"""The policy protocol: online routing equals offline routing, persistence, fitting rules, threshold search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from conftest import ucf101_slice

from condsel.selection.method.fusion import MemberOutputs
from condsel.selection.evaluation.crossfit import cross_fit
from condsel.selection.evaluation.evaluate import SelectionConfig, fold_ids, out_of_fold
from condsel.selection.method.curves import choose_models
from condsel.selection.method.policies import (
    CascadePolicy,
    EnsembleSelectorPolicy,
    NotFittedError,
    RoutingPolicy,
    SelectorPolicy,
    StaticPolicy,
    load_policy,
)
from condsel.selection.method.fusion import stage_confidence
from condsel.selection.method.policies.cascade import NEVER, grid_totals, stop_stages
from condsel.selection.data.table import PredictionTable
from condsel.selection.method.curves import upper_hull
from condsel.selection.method.fusion import fit_stacking, fuse, fused_loss, probabilities
from condsel.selection.method.policies.base import budget_thresholds, video_draw
from condsel.selection.method.static import static_choices

pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.fixture(scope="module")
def ucf() -> PredictionTable:
    return ucf101_slice(0)


def multilabel_table(n=500, c=6, seed=0) -> PredictionTable:
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, c)) < 0.3).astype(np.int64)
    hard = rng.random(n) < 0.5
    logits = {}
    for name, noise in (("cheap", 2.0), ("mid", 1.0), ("big", 0.4)):
        scale = np.where(hard, noise * 1.5, noise * 0.5)[:, None]
        logits[name] = (3 * labels - 1.5 + rng.normal(size=(n, c)) * scale).astype(np.float32)
    return PredictionTable(np.array([f"v{i}" for i in range(n)]), labels, logits, gflops={"cheap": 1.0, "mid": 4.0, "big": 12.0})


def run_online(policy, table: PredictionTable, i: int, threshold: float) -> tuple[list[str], np.ndarray]:
    """Drive the online protocol for sample ``i``, feeding it the table's logits."""
    outputs: dict[str, np.ndarray] = {}
    for _ in range(len(policy.members_) + 1):
        todo = policy.next_members(outputs, threshold, video=str(table.names[i]))
        if not todo:
            return list(outputs), policy.final_scores(outputs)
        assert not set(todo) & set(outputs), "a member was asked to run twice"
        outputs.update({m: table.logits[m][i] for m in todo})
    raise AssertionError("the policy never stopped")


def assert_online_equals_offline(policy, table: PredictionTable, thresholds) -> None:
    outcomes = policy._outcomes(policy._prepare(table), np.asarray(thresholds, dtype=np.float64))
    for t, gflops, utility in zip(thresholds, outcomes.gflops, outcomes.utility(table.labels)):
        routing = policy.route(table, t)  # the summaries equal what the routed scores give
        np.testing.assert_allclose(gflops, routing.gflops)
        expected = -fused_loss(routing.scores, table.labels) if table.multilabel else routing.scores.argmax(axis=1) == table.labels
        np.testing.assert_allclose(utility, expected, rtol=1e-5, atol=1e-6)
    for t in thresholds:
        routing = policy.route(table, t)
        assert routing.ran.shape == (table.num_samples, len(policy.members_))
        costs = np.array([table.gflops[m] for m in policy.members_])
        np.testing.assert_allclose(routing.gflops, routing.ran @ costs + policy.overhead_gflops_)
        for i in range(table.num_samples):
            ran, scores = run_online(policy, table, i, t)
            assert sorted(ran) == sorted(np.asarray(policy.members_)[routing.ran[i]]), f"sample {i}, t={t}"
            np.testing.assert_allclose(scores, routing.scores[i], atol=1e-6)


POLICY_CASES = [
    lambda: SelectorPolicy(backbone="mv", epochs=2),
    lambda: CascadePolicy(),
    lambda: CascadePolicy(members=["flow", "residual", "iframe"], fusion="stacked", stop="margin"),
    lambda: EnsembleSelectorPolicy(backbone="flow", epochs=2),
    lambda: StaticPolicy(),
    lambda: RoutingPolicy(),
]
POLICY_IDS = ["selector", "cascade", "cascade-stacked-margin", "ensemble_selector", "static", "routing"]


@pytest.mark.parametrize("make", POLICY_CASES, ids=POLICY_IDS)
def test_online_protocol_equals_offline_routing(make, ucf):
    train, test = ucf.subset(np.arange(600)), ucf.subset(np.arange(600, 900))
    policy = make().fit(train)
    assert_online_equals_offline(policy, test, [0.0, 0.3, policy.default_threshold_, 0.8, 1.0])


@pytest.mark.parametrize("make", [
    lambda: SelectorPolicy(backbone="cheap", epochs=3), lambda: CascadePolicy(fusion="stacked"),
    lambda: EnsembleSelectorPolicy(backbone="cheap", epochs=3),
    lambda: StaticPolicy(), lambda: RoutingPolicy(),
], ids=["selector", "cascade", "ensemble_selector", "static", "routing"])
def test_multilabel_policies_use_sigmoid_and_map(make):
    table = multilabel_table()
    policy = make().fit(table.subset(np.arange(350)))
    test = table.subset(np.arange(350, 500))
    assert_online_equals_offline(policy, test, [0.0, 0.5, 1.0])
    points = policy.sweep(test)
    assert all("map" in p for p in points)
    routing = policy.route(test, 1.0)
    assert routing.scores.min() >= 0 and routing.scores.max() <= 1
    assert not np.allclose(routing.scores.sum(axis=1), 1.0)  # per-class sigmoids, not a softmax


@pytest.mark.parametrize("make", POLICY_CASES, ids=POLICY_IDS)
def test_save_and_load_round_trip(make, ucf, tmp_path):
    policy = make().fit(ucf.subset(np.arange(600)))
    policy.save(tmp_path / "p")
    loaded = load_policy(tmp_path / "p")
    assert type(loaded) is type(policy) and loaded.members_ == policy.members_
    assert loaded.default_threshold_ == policy.default_threshold_
    test = ucf.subset(np.arange(600, 900))
    for t in (0.2, 0.7):
        a, b = policy.route(test, t), loaded.route(test, t)
        np.testing.assert_array_equal(a.ran, b.ran)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-7)
        np.testing.assert_allclose(a.gflops, b.gflops)


def test_load_policy_names_the_bad_file(tmp_path):
    (tmp_path / "policy.json").write_text('{"name": "nonsense"}')
    with pytest.raises(ValueError, match="policy.json"):
        load_policy(tmp_path)
    with pytest.raises(ValueError, match="no such file"):
        load_policy(tmp_path / "missing")


def test_not_fitted_error_is_value_and_attribute_error(ucf):
    for policy in (SelectorPolicy(), CascadePolicy(), EnsembleSelectorPolicy()):
        with pytest.raises(NotFittedError):
            policy.route(ucf, 0.5)
        with pytest.raises(ValueError):
            policy.next_members({}, 0.5)
        with pytest.raises(AttributeError):
            policy.save("never-written")


def test_a_pool_of_one_model_is_rejected(ucf):
    with pytest.raises(ValueError, match="at least two models"):
        CascadePolicy().fit(ucf.select_models(["mv"]))


def test_selector_policy_reproduces_the_papers_selector(ucf):
    """Same folds, same config: the policy routes exactly as the existing out-of-fold selector."""
    config = SelectionConfig(folds=3)
    folds = fold_ids(ucf, 3, 0)
    oof = out_of_fold(cross_fit(SelectorPolicy(backbone="mv", epochs=2), ucf, folds, nested=False), ucf, config)
    for k in range(3):
        policy = SelectorPolicy(backbone="mv", epochs=2).fit(ucf.subset(np.flatnonzero(folds != k)))
        test = np.flatnonzero(folds == k)
        assert policy.members_ == oof.order
        for t in (0.3, 0.6):
            picks = choose_models(oof.proba[test], t)
            ran = policy.route(ucf.subset(test), t).ran
            np.testing.assert_array_equal(ran[np.arange(len(test)), picks], True)
            np.testing.assert_array_equal(ran.sum(axis=1), np.where(picks == 0, 1, 2))


def test_stage_confidence_hand_cases():
    p = np.array([[0.6, 0.3, 0.1], [0.4, 0.4, 0.2]])
    np.testing.assert_allclose(stage_confidence(p, False, "maxprob"), [0.6, 0.4])
    np.testing.assert_allclose(stage_confidence(p, False, "margin"), [0.3, 0.0])
    q = np.array([[0.9, 0.2], [0.5, 1.0]])  # multi-label: per-class certainty |2p - 1| = [.8, .6], [0, 1]
    np.testing.assert_allclose(stage_confidence(q, True, "maxprob"), [0.85, 0.75])
    np.testing.assert_allclose(stage_confidence(q, True, "margin"), [0.6, 0.0])


def test_grid_totals_equal_a_loop_over_combinations():
    rng = np.random.default_rng(1)
    n, s = 40, 3
    conf = rng.random((n, s))
    values = rng.random((2, n, s + 1))
    grids = [np.sort(rng.random(4)) for _ in range(s)] + []
    totals = grid_totals(conf, values, grids)
    for idx in itertools.product(*[range(len(g)) for g in grids]):
        stop = stop_stages(conf, np.array([g[i] for g, i in zip(grids, idx)]))
        expected = values[:, np.arange(n), stop].sum(axis=1)
        np.testing.assert_allclose(totals[(slice(None), *idx)], expected)


def _tiny_pool(n=24, seed=3) -> PredictionTable:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    logits = {f"m{k}": (rng.normal(size=(n, 3)) * 1.5 + 1.2 * (k + 1) * np.eye(3)[labels]).astype(np.float32) for k in range(4)}
    return PredictionTable(np.array([f"v{i}" for i in range(n)]), labels, logits, gflops={"m0": 1.0, "m1": 2.0, "m2": 5.0, "m3": 9.0})


def _brute_front(policy: CascadePolicy, table: PredictionTable) -> set[tuple[float, float]]:
    """Pareto (cost, accuracy) over every threshold vector built from the stages' own confidences."""
    order = policy.members_
    outputs = MemberOutputs(table.logits, False)
    probs = [policy._fused(outputs, tuple(sorted(order[: k + 1]))) for k in range(len(order))]
    conf = np.stack([stage_confidence(p, False, policy.stop) for p in probs[:-1]], axis=1)
    hits = np.stack([p.argmax(1) == table.labels for p in probs], axis=1)
    cum = np.cumsum([table.gflops[m] for m in policy.members_])
    candidates = [np.r_[0.0, np.unique(conf[:, s]), NEVER] for s in range(conf.shape[1])]
    points = set()
    for th in itertools.product(*candidates):
        stop = stop_stages(conf, np.array(th))
        points.add((round(float(cum[stop].mean()), 9), round(float(hits[np.arange(len(stop)), stop].mean()), 9)))
    front, best = set(), -1.0
    for c, a in sorted(points, key=lambda p: (p[0], -p[1])):
        if a > best:
            front.add((c, a))
            best = a
    return front


@pytest.mark.parametrize("stop", ["maxprob", "margin"])
def test_cascade_threshold_search_matches_brute_force(stop):
    table = _tiny_pool()
    policy = CascadePolicy(members=["m0", "m1", "m2", "m3"], stop=stop, grid=64).fit(table)  # grid covers every distinct confidence
    found = {(round(p["gflops"], 9), round(q["top1"] / 100, 9)) for p, q in zip(policy.front_, policy.sweep(table))}
    assert found == _brute_front(policy, table)


def test_long_cascades_use_coordinate_ascent_and_stay_on_a_sound_front():
    rng = np.random.default_rng(0)
    base = _tiny_pool(n=120)
    logits = dict(base.logits)
    logits.update({f"x{k}": logits["m3"] + rng.normal(size=logits["m3"].shape).astype(np.float32) for k in range(2)})
    table = PredictionTable(base.names, base.labels, logits, gflops={**base.gflops, "x0": 12.0, "x1": 15.0})
    policy = CascadePolicy(members=["m0", "m1", "m2", "m3", "x0", "x1"]).fit(table)
    points = policy.sweep(table)
    costs = [p["gflops"] for p in points]
    assert costs == sorted(costs) and len(points) >= 3
    assert np.all(np.diff([p["top1"] for p in points]) > 0)  # a Pareto front: each costlier point is better
    assert points[0]["gflops"] == pytest.approx(1.0)  # always stopping after the first member is on it


def test_stacked_fusion_is_fitted_on_training_samples_only(ucf):
    a = CascadePolicy(members=["mv", "iframe"], fusion="stacked").fit(ucf.subset(np.arange(450)))
    b = CascadePolicy(members=["mv", "iframe"], fusion="stacked").fit(ucf.subset(np.arange(450, 900)))
    assert a.weights_["iframe+mv"] != b.weights_["iframe+mv"]
    assert a.weights_["iframe+mv"]["iframe"] > a.weights_["iframe+mv"]["mv"]  # iframe (86.7%) outweighs mv (68.0%)


def test_static_policy_mixes_two_hull_neighbours_by_a_per_video_draw(ucf):
    train = ucf.subset(np.arange(600))
    policy = StaticPolicy().fit(train)
    choices = static_choices(train)
    hull_c, hull_v = upper_hull(choices.gflops, choices.values)
    assert [h["gflops"] for h in policy.hull_] == pytest.approx(hull_c.tolist())
    costs = np.array([h["gflops"] for h in policy.hull_])
    # at a budget halfway between two hull choices, half the videos (up to binomial noise) run the dearer one
    budget = 0.5 * (costs[1] + costs[2])
    t = float(budget_thresholds(np.array([budget]), policy.cost_scale_)[0])
    routing = policy.route(train, t)
    assert set(np.round(routing.gflops, 6)) == {round(costs[1], 6), round(costs[2], 6)}
    share = np.mean(np.isclose(routing.gflops, costs[2]))
    assert abs(share - 0.5) < 3 * np.sqrt(0.25 / 600)
    assert routing.gflops.mean() == pytest.approx(budget, rel=0.1)
    # each video's scores are those of the choice it drew, fused by the mean
    picked = np.isclose(routing.gflops, costs[2])
    for h, rows in ((1, ~picked), (2, picked)):
        expected = np.mean([probabilities(train.logits[m][rows], False) for m in policy.hull_[h]["members"]], axis=0)
        np.testing.assert_allclose(routing.scores[rows], expected, atol=1e-6)
    # on a hull vertex nobody mixes, and the top-1 on its training samples is the vertex's
    at_vertex = policy.route(train, float(budget_thresholds(costs[2:3], policy.cost_scale_)[0]))
    assert np.allclose(at_vertex.gflops, costs[2])
    assert 100 * np.mean(at_vertex.scores.argmax(1) == train.labels) == pytest.approx(hull_v[2])


def test_video_draw_is_uniform_stable_and_keyed_by_file_stem():
    draws = video_draw([f"v{i}" for i in range(20000)], seed=0)
    assert 0 <= draws.min() and draws.max() < 1 and abs(draws.mean() - 0.5) < 0.01
    assert np.histogram(draws, bins=10, range=(0, 1))[0].min() > 1800
    assert video_draw(["v_x_g01_c01"], 0)[0] == video_draw(["videos/v_x_g01_c01.avi"], 0)[0]
    assert video_draw(["v1"], 0)[0] != video_draw(["v1"], 1)[0]


def test_a_mixing_static_policy_needs_the_video_name_online(ucf):
    policy = StaticPolicy().fit(ucf.subset(np.arange(600)))
    costs = np.array([h["gflops"] for h in policy.hull_])
    t = float(budget_thresholds(np.array([0.5 * (costs[0] + costs[1])]), policy.cost_scale_)[0])
    with pytest.raises(ValueError, match="name the video"):
        policy.next_members({}, t)
    assert policy.next_members({}, 0.0) == policy.hull_[0]["members"]


def test_stacking_weights_from_a_row_subsample_match_the_full_fit():
    rng = np.random.default_rng(4)
    n, c = 24000, 6
    labels = rng.integers(0, c, n)
    truth = np.eye(c)[labels]
    logits = [(3 * truth + rng.normal(size=(n, c)) * noise).astype(np.float32) for noise in (0.8, 2.0, 4.0)]
    full = fit_stacking(logits, labels, max_scores=n * logits[0].shape[1])
    sub = fit_stacking(logits, labels, max_scores=6000 * logits[0].shape[1])
    assert full[0] > full[1] > full[2] and sub[0] > sub[1] > sub[2]  # the cleaner member weighs more
    loss = {name: fused_loss(fuse(logits, False, w), labels).mean() for name, w in (("full", full), ("sub", sub), ("equal", np.full(3, 1 / 3)))}
    assert loss["sub"] <= loss["full"] * 1.02 < loss["equal"]  # the subsample's weights fuse (almost) as well on every row


def test_chunked_probabilities_equal_one_pass():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(9000, 7)).astype(np.float32) * 5
    outputs = MemberOutputs({"a": logits, "b": -logits}, multilabel=False)
    np.testing.assert_allclose(outputs.probs("a"), probabilities(logits, False), atol=1e-7)
    weighted = fuse([logits, -logits], False, np.array([0.7, 0.2]))
    np.testing.assert_allclose(weighted, probabilities(0.7 * logits.astype(np.float64) - 0.2 * logits, False), atol=1e-7)
    np.testing.assert_allclose(fuse([logits[0], -logits[0]], False, np.array([0.7, 0.2])), weighted[0], atol=1e-7)


@pytest.mark.parametrize("make", POLICY_CASES, ids=POLICY_IDS)
def test_what_ran_without_scores_is_what_route_ran(make, ucf):
    """``_ran_at`` (the recommended front's share reads it) equals ``route``'s ``ran`` at every threshold."""
    train, test = ucf.subset(np.arange(600)), ucf.subset(np.arange(600, 900))
    policy = make().fit(train, choose_default=False)
    prepared = policy._prepare(test)
    for t in (0.0, 0.3, 0.6, 1.0):
        np.testing.assert_array_equal(policy._ran_at(prepared, t), policy.route(test, t).ran)
