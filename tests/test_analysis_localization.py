"""The beta / pseudo-label sweep on a small synthetic untrimmed benchmark (no real per-clip features ship
with condsel, so this runs on the rendered benchmark; the disparity and label rules are checked by hand)."""

import math

import numpy as np
import pytest

from condsel.analysis.localization import beta_sweep, disparity_histogram
from condsel.localization.features import TwoStreamFeatures
from condsel.localization.pipeline import SelectionSettings
from condsel.localization.synthetic import SyntheticConfig, make_benchmark
from condsel.localization.wtalc import WTALCConfig

BETAS = [0.1, 0.4]


@pytest.fixture(scope="module")
def sweep():
    bench = make_benchmark(2, SyntheticConfig(train_videos=12, test_videos=6, max_clips=52))
    train = TwoStreamFeatures(bench.train.names, bench.train.rgb, bench.train.motion)
    test = TwoStreamFeatures(bench.test.names, bench.test.rgb, bench.test.motion)
    settings = SelectionSettings(standardize=True, points=3, random_seeds=1)
    out = beta_sweep(train, test, bench.gt, bench.config.clip_seconds, BETAS, seed=0, settings=settings,
                     wtalc=WTALCConfig(lr=1e-3, iterations=60), pseudo_label_betas=[0.4])
    return bench, out


def test_label_share_is_the_top_beta_share_of_every_training_video(sweep):
    bench, out = sweep
    lengths = [len(x) for x in bench.train.rgb]
    for run in out["runs"]:
        expected = sum(math.ceil(run["beta"] * t) for t in lengths) / sum(lengths)
        assert run["motion_label_share"] == pytest.approx(expected)
    assert [(r["beta"], r["variant"]) for r in out["runs"]] == [(0.1, "soft"), (0.4, "soft"), (0.4, "pseudo-labels")]
    soft, pseudo = out["runs"][1:]
    assert soft["motion_label_share"] == pseudo["motion_label_share"]  # same cut, different weights


def test_every_curve_runs_from_rgb_alone_to_motion_everywhere(sweep):
    _, out = sweep
    rgb, motion = out["streams"]["rgb"], out["streams"]["motion"]
    for run in out["runs"]:
        first, last = run["selector"][0], run["selector"][-1]
        assert first["motion_share"] == 0.0 and first["map"] == pytest.approx(rgb["map"])
        assert last["motion_share"] == 1.0
        assert first["gflops"] > rgb["gflops"]  # + the selector
        assert last["gflops"] == pytest.approx(first["gflops"] + motion["gflops"])
        assert 0.0 <= run["selector_above_random_fraction"] <= 1.0
        assert [p["motion_share"] for p in run["random"]] == [p["motion_share"] for p in run["selector"]]


def test_disparity_histogram_counts_every_training_clip(sweep):
    bench, out = sweep
    h = out["disparity"]
    assert sum(h["foreground"]) + sum(h["background"]) == sum(len(x) for x in bench.train.rgb)
    assert len(h["edges"]) == len(h["foreground"]) + 1 == 21


def test_disparity_histogram_by_hand():
    d = np.array([0.0, 0.1, 0.55, 1.0, 0.95])
    fg = np.array([True, False, True, True, False])
    h = disparity_histogram(d, fg, bins=2)
    assert h["foreground"] == [1, 2] and h["background"] == [1, 1]  # 1.0 falls in the last bin
    assert h["foreground_mean"] == pytest.approx(1.55 / 3)
