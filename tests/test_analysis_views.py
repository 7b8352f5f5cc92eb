"""Views per video: expected accuracy of averaging c clips x k crops, its cost, the per-view file, and
per-view logits recomputed with the synthetic pool's networks on real video files."""

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import FIXTURES

from condsel.analysis.views import (
    PerViewScores,
    per_view_scores_from_run,
    views_accuracy,
    views_analysis,
)
from condsel.datasets.manifests import ManifestEntry
from condsel.pool.inference import run_member
from condsel.pool.config import PoolConfig, build_pool
from condsel.pool.predict import decode_for
from condsel.pool.run_dir import Run
from condsel.workflows.demo import SYNTHETIC_POOL

VIDEOS = [FIXTURES / "videos" / "arm_wrestling_cut.mp4", FIXTURES / "videos" / "unlabelled_test_cut.avi"]


def noisy_views(n=3000, clips=2, crops=3, classes=10, noise=2.0, seed=0):
    """Each view = the label's one-hot + independent Gaussian noise: more views, less noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    views = np.eye(classes)[labels][:, None, :] + noise * rng.standard_normal((n, clips * crops, classes))
    return views.astype(np.float32), labels


def test_more_views_never_lower_the_expected_accuracy_and_cost_is_linear():
    views, labels = noisy_views()
    points = views_accuracy(views, labels, clips=2, crops=3, gflops_per_view=1.5, draws=10, seed=0)
    grid = {(p["clips"], p["crops"]): p for p in points}
    assert sorted(grid) == [(c, k) for c in (1, 2) for k in (1, 2, 3)]
    for (c, k), p in grid.items():
        assert p["views"] == c * k and p["gflops"] == pytest.approx(1.5 * c * k)
        for more in ((c + 1, k), (c, k + 1)):
            if more in grid:
                assert grid[more]["top1"] >= p["top1"]
    by_views = sorted(points, key=lambda p: p["views"])
    assert by_views[-1]["top1"] > by_views[0]["top1"] + 5  # the effect is large, not a tie
    # all views: a single subset, equal to averaging every view directly
    everything = grid[(2, 3)]
    assert everything["top1_std"] == pytest.approx(0.0, abs=1e-9)
    assert everything["top1"] == pytest.approx(100 * np.mean(views.mean(axis=1).argmax(axis=1) == labels))


def test_identical_views_give_the_same_accuracy_at_every_count():
    views, labels = noisy_views(n=500, clips=3, crops=1)
    same = np.repeat(views[:, :1], 3, axis=1)
    tops = {p["top1"] for p in views_accuracy(same, labels, clips=3, crops=1, gflops_per_view=1.0, draws=3)}
    assert len(tops) == 1


def test_views_must_match_the_layout(tmp_path):
    views, labels = noisy_views(n=20)
    with pytest.raises(ValueError, match="2 clips x 2 crops"):
        views_accuracy(views, labels, clips=2, crops=2, gflops_per_view=1.0)
    with pytest.raises(ValueError, match="model 'big'"):
        PerViewScores(np.arange(20).astype(str), labels, {"big": views}, {"big": (3, 3)}, {"big": 1.0})
    bad = tmp_path / "bad.npz"
    np.savez(bad, names=np.arange(3))
    with pytest.raises(ValueError, match="bad.npz"):
        PerViewScores.load(bad)


def test_per_view_file_round_trips(tmp_path):
    views, labels = noisy_views(n=50)
    scores = PerViewScores(np.array([f"v{i}" for i in range(50)]), labels, {"m": views}, {"m": (2, 3)}, {"m": 0.25},
                           [f"c{i}" for i in range(10)])
    scores.save(tmp_path / "views.npz")
    back = PerViewScores.load(tmp_path / "views.npz")
    np.testing.assert_array_equal(back.views["m"], views)
    assert back.layout == {"m": (2, 3)} and back.gflops_per_view == {"m": 0.25} and back.class_names == scores.class_names
    assert views_analysis(back, draws=2) == views_analysis(scores, draws=2)


def test_per_view_logits_average_to_the_pools_own_outputs_on_real_videos(tmp_path):
    torch.manual_seed(0)
    pool = PoolConfig(SYNTHETIC_POOL.backbone, tuple(replace(m, num_classes=5) for m in SYNTHETIC_POOL.members))
    members = {m.name: m for m in pool.members}
    models = build_pool(pool, random_weights=True)
    order = list(members)
    # the views analysis reads only the members a policy may run, not its decisions
    run = Run(root=Path("."), pool=pool, models=models, policy=SimpleNamespace(members_=order),
              class_names=[f"c{i}" for i in range(5)], threshold=0.5, calibration=[], aggregate="logits",
              random_weights=True)
    entries = [ManifestEntry(p.name, p, i) for i, p in enumerate(VIDEOS)]
    missing = ManifestEntry("missing.mp4", tmp_path / "missing.mp4", 0)
    scores, failures = per_view_scores_from_run(run, [entries[0], missing, *entries[1:]], batch_size=2)
    assert list(failures) == ["missing.mp4"] and "missing.mp4" in failures["missing.mp4"]
    assert list(scores.names) == [e.name for e in entries]
    for name in order:
        clip = members[name].clip
        assert scores.views[name].shape == (len(entries), clip.views, 5)
        assert scores.layout[name] == (clip.clips, clip.crops)
        assert scores.gflops_per_view[name] * clip.views == pytest.approx(run.gflops[name])
        with torch.no_grad():
            pooled = run_member(members[name], models[name], [decode_for(run, e.path) for e in entries]).logits
        np.testing.assert_allclose(scores.views[name].mean(axis=1), pooled, rtol=1e-4, atol=1e-5)
    assert scores.views["conv3d_l"].std(axis=1).max() > 0  # the views do differ
