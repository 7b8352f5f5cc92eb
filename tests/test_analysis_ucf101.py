"""The table analyses on the real UCF101 split-1 scores (bundled copy of the published dmc-net files).

Cross-validation runs are shared through one module-scoped memo (3 folds, no
bootstrap) to keep the file at a few seconds per run.
"""


from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, recall_score

from condsel.analysis.alpha import alpha_sweep, label_shift
from condsel.analysis.backbones import backbone_comparison
from condsel.analysis.diagnostics import reliability, selector_diagnostics
from condsel.analysis.latency import accuracy_at_threshold, latency_points
from condsel.analysis.oof import OutOfFoldRuns
from condsel.analysis.operating import default_operating_point
from condsel.analysis.per_class import per_class_compute
from condsel.datasets.ucf101 import ucf101_table
from condsel.selection.method.curves import choose_models
from condsel.selection.evaluation.evaluate import SelectionConfig
from condsel.selection.method.policies import SelectorPolicy
from condsel.selection.method.metrics import topk_correct

CONFIG = SelectionConfig(folds=3, bootstrap=0, thresholds=201)
SELECTOR = SelectorPolicy(backbone="mv")


@pytest.fixture(scope="module")
def runs():
    return OutOfFoldRuns(ucf101_table())


@pytest.fixture(scope="module")
def mv(runs):
    return runs(SELECTOR, CONFIG)


def hits_of(table, order):
    return np.stack([topk_correct(table.logits[m], table.labels, 1) for m in order], axis=1)


# --- alpha sweep ---------------------------------------------------------------------------------

def test_alpha_zero_labels_each_video_with_its_lowest_loss_model(runs):
    table = runs.table
    shift = label_shift(table, "mv", [0.0])
    order = shift["pool"]
    # independent reference: torch's cross-entropy per video and model
    labels = torch.from_numpy(table.labels.astype(np.int64))
    ce = torch.stack([torch.nn.functional.cross_entropy(torch.from_numpy(table.logits[m]).double(), labels, reduction="none")
                      for m in order], dim=1).numpy()
    expected = np.bincount(ce.argmin(axis=1), minlength=len(order)) / table.num_samples
    np.testing.assert_allclose([shift["labels"][0]["share"][m] for m in order], expected, atol=1e-12)
    assert shift["labels"][0]["mean_label_loss"] == pytest.approx(ce.min(axis=1).mean(), rel=1e-9)


def test_larger_alpha_never_raises_the_mean_cost_of_the_labels(runs):
    alphas = [0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 64]
    rows = label_shift(runs.table, "mv", alphas)["labels"]
    for key in ("mean_label_gflops", "mean_routed_gflops"):
        costs = np.array([r[key] for r in rows])
        assert np.all(np.diff(costs) <= 1e-9), (key, costs)
        assert costs[0] > costs[-1]  # and it does move on real data
    losses = np.array([r["mean_label_loss"] for r in rows])
    assert np.all(np.diff(losses) >= -1e-12)  # the price: labels' loss never falls
    for r in rows:
        assert sum(r["share"].values()) == pytest.approx(1.0)


def test_alpha_sweep_curves_are_the_cross_validated_selectors(runs):
    out = alpha_sweep(runs, SELECTOR, [0.0, SELECTOR.alpha], CONFIG)
    assert [c["alpha"] for c in out["curves"]] == [0.0, SELECTOR.alpha]
    zero, default = (c["selector"] for c in out["curves"])
    assert zero != default  # different labels, different selectors
    _, doc = runs(SELECTOR, CONFIG)
    assert default == [{k: p[k] for k in ("threshold", "gflops", "top1")} for p in doc.curves.selector]


# --- per-class compute ---------------------------------------------------------------------------

def test_per_class_aggregates_back_to_the_overall_operating_point(runs, mv):
    oof, summary = mv
    point = default_operating_point(summary)
    out = per_class_compute(runs.table, oof, point["threshold"])
    videos = np.array([c["videos"] for c in out["classes"]])
    assert videos.sum() == runs.table.num_samples and len(out["classes"]) == 101
    for key in ("top1", "gflops"):
        weighted = np.sum(videos * [c[key] for c in out["classes"]]) / videos.sum()
        assert weighted == pytest.approx(out["overall"][key], rel=1e-9)
    # the same operating point as the summary's sweep
    assert out["overall"]["top1"] == pytest.approx(point["top1"], abs=1e-9)
    assert out["overall"]["gflops"] == pytest.approx(point["gflops"], rel=1e-9)
    costs = sorted(c["gflops"] for c in out["classes"])
    by_name = {c["class"]: c["gflops"] for c in out["classes"]}
    assert [by_name[n] for n in out["cheapest"]] == costs[:5]
    assert [by_name[n] for n in out["costliest"]] == costs[::-1][:5]


def test_per_class_at_threshold_zero_is_the_backbone_alone(runs, mv):
    oof, _ = mv
    out = per_class_compute(runs.table, oof, 0.0)
    backbone = runs.table.logits["mv"]
    recall = 100 * recall_score(runs.table.labels, backbone.argmax(axis=1), average=None, labels=np.arange(101))
    np.testing.assert_allclose([c["top1"] for c in out["classes"]], recall, atol=1e-9)
    cost = runs.table.gflops["mv"] + oof.selector_gflops
    np.testing.assert_allclose([c["gflops"] for c in out["classes"]], cost)


def test_classes_the_backbone_gets_right_cost_less(runs, mv):
    """The selector should spend where the backbone fails: rank correlation of per-class backbone
    accuracy and per-class GFLOPs is clearly negative on UCF101."""
    oof, summary = mv
    out = per_class_compute(runs.table, oof, default_operating_point(summary)["threshold"])
    acc = np.array([c["backbone_top1"] for c in out["classes"]])
    cost = np.array([c["gflops"] for c in out["classes"]])
    rank = lambda x: np.argsort(np.argsort(x)).astype(float)  # noqa: E731 (no ties matter at this size)
    rho = np.corrcoef(rank(acc), rank(cost))[0, 1]
    assert rho < -0.5


# --- backbones -----------------------------------------------------------------------------------

def test_each_backbone_curve_runs_from_its_backbone_to_the_costliest_model(runs):
    out = backbone_comparison(runs, SELECTOR, ["mv", "residual"], CONFIG)
    table = runs.table
    for name, b in out["backbones"].items():
        first, last = b["selector"][0], b["selector"][-1]
        assert first["threshold"] == 0.0
        assert first["gflops"] == pytest.approx(table.gflops[name] + b["selector_gflops"])
        assert first["top1"] == pytest.approx(100 * topk_correct(table.logits[name], table.labels).mean())
        assert last["gflops"] == pytest.approx(table.gflops[name] + table.gflops["iframe"] + b["selector_gflops"])
        assert last["top1"] == pytest.approx(100 * topk_correct(table.logits["iframe"], table.labels).mean())
    assert out["backbones"]["mv"]["selector"] != out["backbones"]["residual"]["selector"]


# --- diagnostics ---------------------------------------------------------------------------------

def test_reliability_matches_scikit_learn_and_a_hand_ece():
    rng = np.random.default_rng(0)
    conf = rng.random(5000)
    hit = rng.random(5000) < conf ** 2
    ours = reliability(conf, hit, bins=10)
    prob_true, prob_pred = calibration_curve(hit, conf, n_bins=10, strategy="uniform")
    filled = [i for i, n in enumerate(ours["count"]) if n]
    np.testing.assert_allclose([ours["rate"][i] for i in filled], prob_true)
    np.testing.assert_allclose([ours["confidence"][i] for i in filled], prob_pred)
    counts = np.array(ours["count"])
    ece = np.sum(counts[filled] / 5000 * np.abs(prob_true - prob_pred))
    assert ours["ece"] == pytest.approx(ece)
    assert reliability([0.3, 0.7], [0, 1], bins=2)["ece"] == pytest.approx(0.3)  # by hand: (0.3 + 0.3) / 2


def test_diagnostics_on_ucf101(runs, mv):
    oof, summary = mv
    t = default_operating_point(summary)["threshold"]
    out = selector_diagnostics(runs.table, oof, t)
    label = SELECTOR.affinity(runs.table, oof.order).argmax(axis=1)
    chosen = choose_models(oof.proba, t)
    np.testing.assert_array_equal(out["confusion"], confusion_matrix(label, chosen, labels=range(len(oof.order))))
    assert [out["label_share"][m] for m in oof.order] == pytest.approx(np.bincount(label, minlength=5) / len(label))
    assert out["majority_label_rate"] == pytest.approx(max(out["label_share"].values()))
    # trained with cross-entropy on these labels, it is calibrated on them out-of-fold
    assert out["reliability_vs_label"]["ece"] < 0.05
    assert sum(out["reliability_vs_label"]["count"]) == runs.table.num_samples


# --- latency: the accuracy read off the sweep ------------------------------------------------------

def test_latency_accuracy_is_the_sweep_at_the_timed_threshold(runs, mv):
    oof, summary = mv
    hits = hits_of(runs.table, oof.order)
    for t in (0.0, 0.2, 0.35, 0.5, 0.8, 1.0):
        picks = choose_models(oof.proba, t)
        expected = 100 * hits[np.arange(len(picks)), picks].mean()
        assert accuracy_at_threshold(summary.curves.selector, t) == pytest.approx(expected)
    timed = {
        "largest": {"model": "iframe", "seconds_per_video": 0.2, "gflops": 287.8},
        "selector": {"seconds_per_video": 0.1, "gflops": 150.0, "threshold": 0.35},
        "selector_load_per_selection": {"seconds_per_video": 0.3, "gflops": 150.0},
    }
    out = latency_points(replace(summary, latency=timed))
    modes = {p["mode"]: p for p in out["points"]}
    assert set(modes) == set(timed)
    assert modes["largest"]["top1"] == pytest.approx(summary.models["iframe"]["top1"])
    assert modes["selector"]["top1"] == modes["selector_load_per_selection"]["top1"] == pytest.approx(
        accuracy_at_threshold(summary.curves.selector, 0.35))
    with pytest.raises(ValueError, match="latency"):
        latency_points(summary)
