"""Multi-label tables: BCE affinity and mAP flow through the same engine."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from condsel.selection.evaluation.comparison import evaluate_policies
from condsel.selection.evaluation.crossfit import cross_fit, held_out_curve, held_out_routes
from condsel.selection.evaluation.comparison import cross_validate
from condsel.selection.evaluation.evaluate import SelectionConfig, fold_ids
from condsel.selection.method import chunks
from condsel.selection.method.fusion import FusedStats, fuse, fused_loss, member_outputs, summarize
from condsel.selection.method.affinity import affinity_targets, hard_affinity, loss_matrix, normalized_costs, pool_order
from condsel.selection.method.policies import CascadePolicy, SelectorPolicy, StaticPolicy
from condsel.selection.data.table import PredictionTable


def _table(n=600, c=8, seed=0) -> PredictionTable:
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, c)) < 0.25).astype(np.int64)
    labels[np.arange(n), rng.integers(0, c, n)] = 1
    hard = rng.random(n) < 0.5  # half the videos are hard for the cheap model
    logits = {}
    for name, noise in (("cheap", 2.0), ("mid", 1.0), ("big", 0.4)):
        scale = np.where(hard, noise * 1.5, noise * 0.5)[:, None]
        logits[name] = (3 * labels - 1.5 + rng.normal(size=(n, c)) * scale).astype(np.float32)
    return PredictionTable(np.array([f"v{i}" for i in range(n)]), labels, logits, gflops={"cheap": 1.0, "mid": 4.0, "big": 12.0})


def test_multilabel_summary_uses_map_and_matches_sklearn():
    table = _table()
    summary = cross_validate(SelectorPolicy(backbone="cheap"), table, SelectionConfig(folds=3, bootstrap=0, random_seeds=3))
    assert summary["metric"] == "map"
    for name, model in summary["models"].items():
        expected = 100 * average_precision_score(table.labels, table.logits[name], average="macro")
        assert model["map"] == pytest.approx(expected, abs=1e-9)
    selector = summary["curves"]["selector"]
    # threshold 0: every video stays on the backbone
    assert selector[0]["map"] == pytest.approx(summary["models"]["cheap"]["map"])
    assert selector[0]["gflops"] == pytest.approx(1.0 + summary["selector_gflops"])
    # the selector helps: somewhere below the big model's cost it beats the mid model's mAP
    assert max(p["map"] for p in selector if p["gflops"] < 12.0) > summary["models"]["mid"]["map"]


def _duplicated_classes(table: PredictionTable) -> PredictionTable:
    """The same videos with every class column twice: the same task, so the same affinity."""
    return PredictionTable(
        table.names, np.concatenate([table.labels, table.labels], axis=1),
        {m: np.concatenate([z, z], axis=1) for m, z in table.logits.items()}, gflops=table.gflops,
    )


@pytest.mark.parametrize("temperature", [None, 0.1])
def test_duplicating_every_class_leaves_the_loss_and_the_affinity_unchanged(temperature):
    """The BCE is averaged over classes, so the loss scale (and hence what alpha means) ignores the class count."""
    table = _table()
    twice = _duplicated_classes(table)
    order = pool_order(table.models, "cheap")
    losses = loss_matrix([table.logits[m] for m in order], table.labels)
    np.testing.assert_allclose(loss_matrix([twice.logits[m] for m in order], twice.labels), losses, rtol=1e-12)
    costs = normalized_costs(np.array([table.gflops[m] for m in order]))
    labels = affinity_targets(losses, costs, 0.5, temperature)
    twice_losses = loss_matrix([twice.logits[m] for m in order], twice.labels)
    np.testing.assert_allclose(affinity_targets(twice_losses, costs, 0.5, temperature), labels, rtol=1e-6, atol=0)
    # the test can fail: a loss summed over classes (twice as large here) moves labels on this table
    assert (hard_affinity(2 * losses, costs, 0.5).argmax(1) != labels.argmax(1)).mean() > 0.05


@pytest.mark.parametrize("make", [lambda: CascadePolicy(fusion="stacked"), lambda: StaticPolicy()], ids=["cascade-stacked", "static"])
def test_held_out_curves_equal_what_the_routed_scores_give(make):
    """Exact curves are mAP of the routed scores; choice-only estimates are minus their mean BCE, from summaries alone."""
    table = _table(n=450)
    folds = fold_ids(table, 3, 0)
    fits = cross_fit(make(), table, folds)
    thresholds = np.linspace(0.0, 1.0, 7)
    for outer in (None, 1):
        cost, exact = held_out_curve(fits, table, thresholds, outer_fold=outer)
        _, estimate = held_out_curve(fits, table, thresholds, outer_fold=outer, exact=False)
        for t, c, m, e in zip(thresholds, cost, exact, estimate):
            routed = held_out_routes(fits, t, outer)
            assert c == pytest.approx(routed.gflops.mean())
            assert m == pytest.approx(100 * average_precision_score(table.labels[routed.rows], routed.scores, average="macro"))
            assert e == pytest.approx(-fused_loss(routed.scores, table.labels[routed.rows]).mean(), rel=1e-5)


def test_fused_stats_made_by_row_ranges_and_chunks_equal_one_pass(monkeypatch):
    table = _table(n=300)
    subsets = [("cheap",), ("cheap", "mid"), ("big", "cheap", "mid")]
    outputs = member_outputs(table)
    whole = [summarize(fuse([table.logits[m] for m in s], True), table.labels, True) for s in subsets]
    monkeypatch.setattr(chunks, "CHUNK_SCORES", 8 * 7)  # chunks of 7 rows
    parts = [outputs.compute_stats(subsets, slice(lo, hi)) for lo, hi in ((0, 100), (100, 233), (233, 300))]
    for i, expected in enumerate(whole):
        joined = FusedStats.concatenate([p[i] for p in parts])
        np.testing.assert_allclose(joined.loss, expected.loss, rtol=1e-6)
        for rule, confidence in expected.confidence.items():
            np.testing.assert_allclose(joined.confidence[rule], confidence, rtol=1e-6)


def test_multilabel_summary_is_byte_identical_whatever_the_worker_count():
    """Curves, inner estimates and the front's mAP are evaluated by forked workers: the summary must not notice."""
    table = _table(n=300)
    selector = SelectorPolicy(hidden=(8,), epochs=2)
    runs = [evaluate_policies(table, "cheap", [selector, "cascade"], SelectionConfig(folds=3, bootstrap=0), selector=selector, workers=w)
            for w in (1, 2)]
    assert runs[0]["metric"] == "map" and runs[0]["recommended"] and runs[0]["policies"]["cascade_stacked"]
    assert json.dumps(runs[0]) == json.dumps(runs[1])
