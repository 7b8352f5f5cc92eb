"""One engine: the paper's selector curve and the policies' fronts come from the same cross-fits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ucf101_slice

from condsel.selection.data.table import PredictionTable
from condsel.selection.evaluation.comparison import evaluate_policies
from condsel.selection.method.curves import choose_models
from condsel.selection.evaluation.evaluate import SelectionConfig
from condsel.selection.method.fusion import probabilities
from condsel.selection.method.policies import EnsembleSelectorPolicy, SelectorPolicy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = SelectionConfig(folds=3, bootstrap=0, random_seeds=2)


def _summary(table: PredictionTable, **params) -> dict:
    selector = SelectorPolicy(**params)
    return evaluate_policies(table, "mv", [selector], CONFIG, selector=selector)


def _paper_at(summary: dict, threshold: float) -> dict:
    """``curves.selector`` keeps the first threshold of each run of equal points: the curve at t is its last point at or below t."""
    return [p for p in summary["curves"]["selector"] if p["threshold"] <= threshold + 1e-9][-1]


def _assert_one_front(summary: dict) -> None:
    for point in summary["policies"]["selector"]:
        paper = _paper_at(summary, point["threshold"])
        assert paper["gflops"] == pytest.approx(point["gflops"], rel=1e-6)
        assert paper["top1"] == pytest.approx(point["top1"], abs=1e-6)


@pytest.mark.slow
def test_the_papers_curve_and_the_selector_policy_are_one_out_of_fold_front():
    table = ucf101_slice(3, videos=600).select_models(["mv", "flow", "iframe"])
    base = _summary(table, hidden=(8,), epochs=1, lr=0.1)
    _assert_one_front(base)
    for change in ({"hidden": (32,)}, {"epochs": 3}, {"lr": 0.003}):
        other = _summary(table, **{"hidden": (8,), "epochs": 1, "lr": 0.1, **change})
        _assert_one_front(other)
        moved = [a["top1"] != b["top1"] for a, b in zip(base["policies"]["selector"], other["policies"]["selector"])]
        assert any(moved), change
        assert base["curves"]["selector"] != other["curves"]["selector"], change


def test_ensemble_selector_scores_are_the_fused_probabilities_of_the_entry_it_fuses():
    """Two models: 'weak' (the backbone) is noise, 'strong' is right, so the entry running both fuses 'strong' alone."""
    rng = np.random.default_rng(0)
    n, c = 300, 4
    labels = rng.integers(0, c, n)
    weak = rng.normal(size=(n, c)).astype(np.float32)
    strong = (4.0 * np.eye(c)[labels] + rng.normal(size=(n, c))).astype(np.float32)
    table = PredictionTable(np.array([f"v{i}" for i in range(n)]), labels, {"weak": weak, "strong": strong}, gflops={"weak": 1.0, "strong": 5.0})
    policy = EnsembleSelectorPolicy(backbone="weak", max_size=1, hidden=(8,), epochs=3).fit(table)
    both = next(e for e in policy.entries_ if e["run"] == ["weak", "strong"])
    assert both["fuse"] == ["strong"]  # fused set differs from the set it runs
    expected = {("weak",): probabilities(weak, False), ("strong",): probabilities(strong, False)}
    for t in (0.2, 0.5, 0.8, 1.0):
        picks = choose_models(policy.confidences(table), t)
        routing = policy.route(table, t)
        for e, entry in enumerate(policy.entries_):
            rows = picks == e
            np.testing.assert_allclose(routing.scores[rows], expected[tuple(entry["fuse"])][rows], rtol=1e-6)
            assert routing.ran[rows].sum(axis=1).tolist() == [len(entry["run"])] * int(rows.sum())
    assert (choose_models(policy.confidences(table), 1.0) == 1).any()  # the fused entry is exercised


@pytest.mark.slow
def test_the_summary_is_byte_identical_whatever_the_worker_count():
    table = ucf101_slice(4, videos=300).select_models(["mv", "flow", "iframe"])
    selector = SelectorPolicy(hidden=(8,), epochs=2)
    runs = [evaluate_policies(table, None, [selector, "cascade"], CONFIG, selector=selector, workers=w) for w in (1, 2)]
    assert runs[0]["backbone_chosen"] and runs[0]["policies"]["selector"]
    assert json.dumps(runs[0]) == json.dumps(runs[1])
