"""``condsel fit``'s choices: the operating point comes from out-of-fold routing, ``best`` from every policy."""

from __future__ import annotations

import numpy as np
import pytest

from condsel.pool.config import PoolConfig, PoolMember
from condsel.pool.fit import THRESHOLDS, FitSettings, fit_policy, table_digest
from condsel.pool.run_dir import point_within_budget
from condsel.selection.evaluation.evaluate import fold_ids
from condsel.selection.method.policies import POLICIES, SelectorPolicy
from condsel.selection.data.table import PredictionTable
from condsel.video.sampling import ClipSpec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CLASSES = 6


def two_member_table(n: int = 150, seed: int = 0) -> PredictionTable:
    """A cheap member right on the first half of the classes, a costly one right on most videos."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    cheap, costly = rng.normal(size=(n, CLASSES)), rng.normal(size=(n, CLASSES))
    cheap[np.arange(n), labels] += np.where(labels < CLASSES // 2, 4.0, 0.0)
    costly[np.arange(n), labels] += 3.0
    return PredictionTable(np.array([f"v{i:03d}" for i in range(n)]), labels,
                           {"cheap": cheap.astype(np.float32), "costly": costly.astype(np.float32)},
                           {"cheap": 1.0, "costly": 10.0}, class_names=[f"c{i}" for i in range(CLASSES)])


POOL = PoolConfig("cheap", (PoolMember("cheap", "x3d_xs", ClipSpec(4, 12, 160), CLASSES),
                            PoolMember("costly", "x3d_s", ClipSpec(13, 6, 160), CLASSES)))


def test_the_operating_point_is_measured_out_of_fold():
    table = two_member_table()
    settings = FitSettings(policy="selector", budget=6.0, folds=3, seed=0)
    result = fit_policy(POOL, table, settings)
    # an independent out-of-fold loop through the public policy API only
    folds = fold_ids(table, 3, 0)
    t = result.point["threshold"]
    scores, gflops = np.zeros((table.num_samples, CLASSES)), np.zeros(table.num_samples)
    for k in range(3):
        train, test = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        routing = SelectorPolicy(backbone="cheap", seed=0).fit(table.subset(train)).route(table.subset(test), t)
        scores[test], gflops[test] = routing.scores, routing.gflops
    assert result.point["gflops"] == pytest.approx(gflops.mean()) and result.point["gflops"] <= 6.0
    assert result.point["top1"] == pytest.approx(100 * np.mean(scores.argmax(1) == table.labels))
    assert result.point == point_within_budget(result.curve, 6.0)
    assert [p["threshold"] for p in result.curve] == pytest.approx(THRESHOLDS.tolist())
    # the final policy is fitted on every video, with the pool's backbone
    assert result.policy.members_[0] == "cheap" and result.policy.name == "selector"


def test_best_is_the_recommended_choice_at_the_budget_with_nested_figures():
    table = two_member_table(seed=1)
    result = fit_policy(POOL, table, FitSettings(policy="best", budget=6.0, folds=3))
    assert sorted(result.candidates) == sorted(POLICIES)
    top = max(result.candidates.values(), key=lambda c: (c["top1"], -c["gflops"]))
    assert result.policy.name == top["policy"] and result.point["threshold"] == top["threshold"]
    assert result.point["out_of_fold_estimate"]["top1"] == pytest.approx(top["top1"])
    assert all(c["gflops"] <= 6.0 for c in result.candidates.values())
    with pytest.raises(ValueError, match="give --budget"):
        FitSettings(policy="best")


def test_settings_and_digest():
    with pytest.raises(ValueError, match="unknown policy 'oracle'"):
        FitSettings(policy="oracle")
    with pytest.raises(ValueError, match="outside"):
        FitSettings(threshold=1.5)
    table = two_member_table()
    assert table_digest(table) == table_digest(two_member_table())
    changed = two_member_table()
    changed.logits["costly"][0, 0] += 1.0
    assert table_digest(changed) != table_digest(table)
