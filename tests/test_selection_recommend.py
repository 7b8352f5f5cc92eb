"""Cross-fitting, the nested recommended front and static baselines, on real UCF101 scores and hand cases."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ucf101_slice

from condsel.selection.evaluation.crossfit import CrossFits, cross_fit, fit_all, held_out_curve, held_out_routes, inner_curves
from condsel.selection.evaluation.evaluate import fold_ids
from condsel.selection.evaluation.comparison import THRESHOLDS, candidates, compare_policies
from condsel.selection.method.policies import CascadePolicy, SelectorPolicy, StaticPolicy
from condsel.selection.method.policies.base import ended_counts
from condsel.selection.method.prune import candidate_orders, prune_members
from condsel.selection.evaluation.recommend import choose, nested_front
from condsel.selection.method.static import fusion_oracle, static_choices, static_hull, static_points
from condsel.selection.data.table import PredictionTable

pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.fixture(scope="module")
def ucf() -> PredictionTable:
    return ucf101_slice(1)


CASCADE = CascadePolicy(members=["flow", "residual", "iframe"])


def test_held_out_routes_cover_every_sample_once_with_a_fit_that_never_saw_it(ucf):
    folds = fold_ids(ucf, 3, 0)
    fits = cross_fit(CASCADE, ucf, folds)
    routes = held_out_routes(fits, 0.5)
    assert sorted(routes.rows) == list(range(ucf.num_samples))
    inner = held_out_routes(fits, 0.5, outer_fold=1)
    assert set(inner.rows) == set(np.flatnonzero(folds != 1))
    # the inner fit for fold 0 inside outer fold 1 was trained on fold 2 alone
    fit = fits.inner[(1, 0)]
    alone = CASCADE.clone().fit(ucf.subset(np.flatnonzero(folds == 2)))
    assert fit.policy.front_ == alone.front_


def _leaky(fits: CrossFits) -> CrossFits:
    """Routes the nested estimate for outer fold k with the outer fits, which trained on fold k."""
    return CrossFits(fits.folds, fits.outer, {(k, i): fits.outer[i] for k, i in fits.inner})


def _inner_curves_ignore_held_out_labels(table: PredictionTable, makers: dict, seed: int, transform=lambda f: f) -> None:
    """For each outer fold k: permuting fold k's labels leaves every inner curve, and so every choice for k, unchanged."""
    folds = fold_ids(table, 3, seed)
    base = inner_curves({n: transform(cross_fit(m, table, folds)) for n, m in makers.items()}, table, THRESHOLDS)
    for k in range(3):
        labels = table.labels.copy()
        held = np.flatnonzero(folds == k)
        labels[held] = np.random.default_rng(seed + 5).permutation(labels[held])
        shuffled = PredictionTable(table.names, labels, table.logits, gflops=table.gflops)
        again = inner_curves({n: transform(cross_fit(m, shuffled, folds)) for n, m in makers.items()}, shuffled, THRESHOLDS)
        for name in makers:
            np.testing.assert_allclose(again[k][name][0], base[k][name][0])  # estimated GFLOPs
            np.testing.assert_allclose(again[k][name][1], base[k][name][1])  # estimated top-1


@pytest.mark.slow
def test_nested_choices_never_read_held_out_labels():
    """Over several folds and seeds; a variant that estimates with the outer fits (which saw fold k) fails the same check."""
    makers = {"cascade": CascadePolicy(members=["flow", "iframe"], fusion="stacked"),
              "selector": SelectorPolicy(backbone="mv", hidden=(8,), epochs=1)}
    for seed in (0, 1):
        table = ucf101_slice(seed, videos=450).select_models(["mv", "flow", "iframe"])
        _inner_curves_ignore_held_out_labels(table, makers, seed)
    with pytest.raises(AssertionError):
        _inner_curves_ignore_held_out_labels(table, makers, 1, transform=_leaky)


def test_choose_takes_the_best_affordable_point():
    curves = {"a": (np.array([10.0, 20.0, 30.0]), np.array([50.0, 60.0, 70.0])), "b": (np.array([15.0, 25.0]), np.array([65.0, 66.0]))}
    t = np.array([0.0, 0.5, 1.0])
    assert (choose(curves, t, 22.0).policy, choose(curves, t, 22.0).threshold) == ("b", 0.0)
    assert choose(curves, t, 40.0).policy == "a" and choose(curves, t, 40.0).threshold == 1.0
    assert choose(curves, t, 5.0).estimated_gflops == 10.0  # nothing affordable: the cheapest point


def test_static_choices_hand_case():
    labels = np.array([0, 1, 1, 0])
    a = np.log(np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55]]))
    b = np.log(np.array([[0.4, 0.6], [0.1, 0.9], [0.3, 0.7], [0.7, 0.3]]))
    table = PredictionTable(np.array(list("wxyz")), labels, {"a": a, "b": b}, gflops={"a": 1.0, "b": 3.0})
    choices = static_choices(table)
    assert choices.members == [("a",), ("b",), ("a", "b")]
    np.testing.assert_allclose(choices.gflops, [1.0, 3.0, 4.0])
    # fused mean: [.65,.35] right, [.35,.65] right, [.25,.75] right, [.575,.425] right
    np.testing.assert_allclose(choices.values, [50.0, 75.0, 100.0])
    np.testing.assert_allclose(choices.probs(2), (np.exp(a) + np.exp(b)) / 2)
    points = static_points(choices, labels)
    assert [p["members"] for p in points] == [["a"], ["b"], ["a", "b"]]
    assert [p["gflops"] for p in static_hull(points, "top1")] == [1.0, 4.0]  # b lies under the a..a+b chord
    oracle = fusion_oracle(choices, labels)
    # a is right on w and y; x and z need b (3): mean cost (1 + 3 + 1 + 3) / 4
    assert oracle[0] == {"gflops": 1.0, "top1": 50.0}
    assert oracle[-1]["gflops"] == pytest.approx(2.0) and oracle[-1]["top1"] == 100.0


def test_pruning_drops_dominated_members_and_says_why():
    rng = np.random.default_rng(0)
    n = 400
    labels = rng.integers(0, 4, n)
    good = np.eye(4)[labels] * 3 + rng.normal(size=(n, 4))
    logits = {"cheap": good + rng.normal(size=(n, 4)), "good": good, "costly_copy": good * 0.5 + rng.normal(size=(n, 4)) * 2}
    table = PredictionTable(np.array([f"v{i}" for i in range(n)]), labels, logits, gflops={"cheap": 1.0, "good": 2.0, "costly_copy": 9.0})
    kept, dropped = prune_members(table)
    assert "costly_copy" in dropped and "Pareto" in dropped["costly_copy"]
    assert kept[:2] == ["cheap", "good"]
    assert len(candidate_orders(["a", "b", "c"])) == 3 + 6 + 6


def test_compare_policies_sections(ucf):
    folds = fold_ids(ucf, 3, 0)
    out = compare_policies(ucf, folds, fit_all(ucf, folds, candidates(["cascade"])), bootstrap=20, budgets=np.array([50.0, 100.0]))
    assert set(out["policies"]) == {"cascade", "cascade_stacked"}
    assert all({"gflops", "top1", "threshold"} <= set(p) for p in out["policies"]["cascade"])
    assert len(out["static"]) == 5 + 10 + 10
    for point in out["recommended"]:
        assert {"budget", "policy", "gflops", "top1", "ci95"} <= set(point)
        assert point["ci95"]["low"] <= point["top1"] <= point["ci95"]["high"]
    costs, values = held_out_curve(cross_fit(CASCADE, ucf, folds, nested=False), ucf, np.array([0.0, 1.0]))
    assert costs[0] == pytest.approx(44.36) and costs[1] > costs[0]


def test_multilabel_tables_get_map_everywhere():
    rng = np.random.default_rng(0)
    n, c = 450, 5
    labels = (rng.random((n, c)) < 0.3).astype(np.int64)
    logits = {name: (3 * labels - 1.5 + rng.normal(size=(n, c)) * noise).astype(np.float32) for name, noise in (("cheap", 2.5), ("mid", 1.2), ("big", 0.5))}
    table = PredictionTable(np.array([f"v{i}" for i in range(n)]), labels, logits, gflops={"cheap": 1.0, "mid": 4.0, "big": 12.0})
    folds = fold_ids(table, 3, 0)
    out = compare_policies(table, folds, fit_all(table, folds, candidates(["cascade", "static"])), bootstrap=10, budgets=np.array([2.0, 8.0]))
    assert all("map" in p for pts in out["policies"].values() for p in pts)
    assert all("map" in p for p in out["static"] + out["static_hull"] + out["fusion_oracle"] + out["recommended"])
    assert out["recommended"][0]["ci95"] is None  # no bootstrap for mAP
    # with a budget of 8 (cheap + mid fit), the recommended point beats the cheap model alone
    cheap = next(p for p in out["static"] if p["members"] == ["cheap"])["map"]
    assert out["recommended"][1]["map"] > cheap


@pytest.mark.slow
def test_with_static_choices_as_a_policy_the_recommended_front_keeps_to_the_static_hull(ucf):
    """Real UCF101 scores: the paper's selector alone falls below the static hull; with `static` among the candidates the nested front does not (beyond noise)."""
    folds = fold_ids(ucf, 5, 0)
    fits = fit_all(ucf, folds, {"selector": SelectorPolicy(backbone="mv", epochs=2), "static": StaticPolicy()})
    budgets = np.geomspace(50.0, 300.0, 8)
    out = compare_policies(ucf, folds, fits, bootstrap=0, budgets=budgets)
    hull = out["static_hull"]
    hull_at = lambda g: np.interp(g, [p["gflops"] for p in hull], [p["top1"] for p in hull])  # noqa: E731
    shortfall = [hull_at(p["gflops"]) - p["top1"] for p in out["recommended"]]
    alone = [hull_at(p["gflops"]) - p["top1"] for p in out["selector_budgets"]]
    noise = 2 * 100 * np.sqrt(0.9 * 0.1 / ucf.num_samples)  # two standard errors of a top-1 near 90%
    assert max(shortfall) <= noise, shortfall
    assert max(alone) > noise, alone  # the check has teeth: without static choices the front would fail it
    assert {c["policy"] for p in out["recommended"] for c in p["chosen"]} & {"static"}


def _easy_and_hard_table(n: int = 300, easy: float = 0.3) -> PredictionTable:
    """A cheap member sure and right on the first ``easy`` share of videos, unsure and wrong on the rest; a costly one always right."""
    labels = np.arange(n) % 3
    cheap = np.zeros((n, 3), dtype=np.float32)
    k = int(easy * n)
    cheap[np.arange(k), labels[:k]] = 5.0  # softmax 0.987 on the right class
    cheap[np.arange(k, n), (labels[k:] + 1) % 3] = 0.5  # 0.452 on a wrong one
    big = 2.0 * np.eye(3, dtype=np.float32)[labels]
    return PredictionTable(np.array([f"v{i}" for i in range(n)]), labels, {"cheap": cheap, "big": big}, gflops={"cheap": 1.0, "big": 10.0})


def test_recommended_share_is_where_each_held_out_video_ended():
    # By hand: at a budget of 1 every video stops at cheap (30% right); at 11 the most accurate
    # setting (100%) with the least cost stops the 90 sure videos at cheap and sends the 210 others
    # on to big, 1 + 0.7 * 10 = 8 GFLOPs on average.
    table = _easy_and_hard_table()
    folds = fold_ids(table, 3, 0)
    fits = fit_all(table, folds, {"cascade": CascadePolicy(members=["cheap", "big"])})
    low, high = nested_front(fits, table, np.array([1.0, 11.0]), THRESHOLDS)
    assert low.share == {"cheap": 1.0, "big": 0.0}
    assert (low.value, float(low.gflops.mean())) == (pytest.approx(30.0), pytest.approx(1.0))
    assert high.share == {"cheap": pytest.approx(0.3), "big": pytest.approx(0.7)}
    assert (high.value, float(high.gflops.mean())) == (pytest.approx(100.0), pytest.approx(8.0))
    # the shares are the routings' own: fold by fold, what route says ran
    ran = np.vstack([fits["cascade"].outer[k].route(k, c.threshold).ran for k, c in high.choices.items()])
    members = fits["cascade"].outer[0].policy.members_
    assert ran[:, members.index("big")].mean() == pytest.approx(high.share["big"])
    assert high.to_dict(table)["share"] == high.share and sum(high.share.values()) == pytest.approx(1.0)


def test_a_selector_share_counts_the_backbone_only_where_it_stopped():
    # the backbone ran on every video; a video the selector sent on counts for the member it chose
    ran = np.array([[True, False, False], [True, True, False], [True, False, True], [True, False, True]])
    assert ended_counts(ran, ["mv", "flow", "iframe"], np.array([44.4, 44.4, 287.8])) == {"mv": 1, "flow": 1, "iframe": 2}
