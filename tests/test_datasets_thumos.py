"""The THUMOS'14 and MultiThumos loaders against the real published files and each other.

Most tests read the 10-video subsets in tests/data (same layouts as the published
files); the counts of the whole sets need ../shared/data and skip without it.
"""

import json

import numpy as np
import pytest
from conftest import FIXTURES, shared_data

from condsel.datasets.thumos import (
    MULTITHUMOS_CLASSES,
    GroundTruth,
    VideoAnnotation,
    activitynet_document,
    activitynet_from_dict,
    compare_ground_truths,
    load_ambiguous,
    load_ground_truth,
    load_multithumos,
    load_wtalc,
)

WTALC = FIXTURES / "thumos14" / "wtalc_subset"
ANET = FIXTURES / "thumos14" / "gt_activitynet_subset.json"
MULTITHUMOS = FIXTURES / "multithumos"


@pytest.fixture(scope="module")
def wtalc():
    return load_wtalc(WTALC)


@pytest.fixture(scope="module")
def multi():
    return load_multithumos(MULTITHUMOS / "multithumos_subset.json")


@pytest.fixture(scope="module")
def wtalc_full():
    return load_wtalc(shared_data("thumos14/wtalc_reduced"))


@pytest.fixture(scope="module")
def multi_full():
    return load_multithumos(shared_data("multithumos/multithumos.json"))


def test_wtalc_counts_match_the_data_readme(wtalc_full):
    assert len(wtalc_full.classes) == 20
    assert sorted(v.subset for v in wtalc_full.videos.values()).count("validation") == 200
    assert len(wtalc_full.subset("test").videos) == 212
    assert wtalc_full.segment_counts() == {"validation": 3007, "test": 3358}
    assert all(np.all(v.segments[:, 1] >= v.segments[:, 0]) for v in wtalc_full.videos.values())


def test_the_subset_reads_as_its_rows_of_the_published_files(wtalc, wtalc_full):
    assert wtalc.classes == wtalc_full.classes
    for name, video in wtalc.videos.items():
        whole = wtalc_full.videos[name]
        np.testing.assert_array_equal(video.segments, whole.segments)
        assert (video.labels, video.tags, video.subset, video.duration) == (whole.labels, whole.tags, whole.subset, whole.duration)


def test_subset_layout(wtalc):
    assert len(wtalc.classes) == 20
    assert wtalc.segment_counts() == {"validation": 20, "test": 129}
    assert all(np.all(v.segments[:, 1] >= v.segments[:, 0]) for v in wtalc.videos.values())


def test_activitynet_json_agrees_except_two_named_test_videos(wtalc):
    comparison = compare_ground_truths(wtalc, load_ground_truth(ANET), tolerance=1e-6)
    assert comparison.only_in_first == {"video_test_0000270": 29, "video_test_0001496": 18}
    assert comparison.only_in_second == {}
    assert comparison.segment_differences == ()  # every shared video: same labels, same times
    assert comparison.subset_pairs == {("validation", "train"): 4, ("test", "test"): 4}
    assert comparison.segment_counts[1] == {"train": 20, "test": 129 - 29 - 18}
    assert not comparison.identical


def test_activitynet_json_agrees_on_the_whole_set(wtalc_full):
    comparison = compare_ground_truths(wtalc_full, load_ground_truth(shared_data("thumos14/gt_activitynet_format.json")), tolerance=1e-6)
    assert comparison.only_in_first == {"video_test_0000270": 29, "video_test_0001496": 18}
    assert comparison.only_in_second == {} and comparison.segment_differences == ()
    assert comparison.subset_pairs == {("validation", "train"): 200, ("test", "test"): 210}
    assert comparison.segment_counts[1] == {"train": 3007, "test": 3358 - 29 - 18}


def test_conversion_round_trips_exactly(wtalc, tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(activitynet_document(wtalc)))
    back = load_ground_truth(path)
    assert compare_ground_truths(wtalc, back, tolerance=0.0).identical
    assert back.videos["video_test_0000004"].duration == wtalc.videos["video_test_0000004"].duration


def test_thumos_gt_cli_writes_activitynet_layout(tmp_path, capsys):
    from condsel.cli import main

    out = tmp_path / "gt.json"
    assert main(["thumos-gt", "--wtalc", str(WTALC), "--out", str(out), "--compare", str(ANET)]) == 0
    database = json.loads(out.read_text())["database"]
    assert len(database) == 10
    assert {"segment", "label"} == set(database["video_validation_0000051"]["annotations"][0])
    assert "video_test_0000270 (29 segments)" in capsys.readouterr().out


def test_ambiguous_segments_belong_to_test_videos(wtalc, wtalc_full):
    spans = load_ambiguous(shared_data("thumos14/wtalc_reduced/Ambiguous_test.txt"))
    assert sum(len(s) for s in spans.values()) == 99
    # one listed video has no action of the 20 classes, so the reduced set leaves it out
    assert set(spans) - set(wtalc_full.subset("test").videos) == {"video_test_0001292"}
    mine = load_ambiguous(WTALC / "Ambiguous_test.txt")
    assert set(mine) - set(wtalc.subset("test").videos) == {"video_test_0001292"}
    assert all(np.array_equal(mine[name], spans[name]) for name in mine)


def test_multithumos_layout_and_class_names(multi):
    assert {s: sum(v.subset == s for v in multi.videos.values()) for s in multi.subsets()} == {"training": 4, "testing": 7}
    alphabetical = (MULTITHUMOS / "class_names_alphabetical.txt").read_text().split()
    assert len(MULTITHUMOS_CLASSES) == 65 and sorted(MULTITHUMOS_CLASSES) == sorted(alphabetical)


def test_multithumos_counts_match_the_data_readme(multi_full):
    assert len(multi_full.videos) == 413
    assert {s: sum(v.subset == s for v in multi_full.videos.values()) for s in multi_full.subsets()} == {"training": 200, "testing": 213}


def test_multithumos_ids_1_to_20_reproduce_the_thumos_segments(wtalc, multi):
    """Ids 1..20 are the THUMOS'14 classes: restricted to them, MultiThumos is W-TALC's
    ground truth with times snapped to frames (within 0.05 s), plus one test video
    without THUMOS actions."""
    assert MULTITHUMOS_CLASSES[:20] == wtalc.classes
    thumos = set(wtalc.classes)
    restricted = GroundTruth(wtalc.classes, {
        name: VideoAnnotation(v.subset, v.segments[[c in thumos for c in v.labels]].reshape(-1, 2),
                              tuple(c for c in v.labels if c in thumos))
        for name, v in multi.videos.items()
    })
    comparison = compare_ground_truths(wtalc, restricted, tolerance=0.05)
    assert comparison.segment_differences == () and comparison.only_in_first == {}
    assert comparison.only_in_second == {"video_test_0001292": 0}


@pytest.mark.parametrize("part,whole", [
    ("BasketballDribble", "BasketballDunk"), ("VolleyballSet", "VolleyballSpiking"),
    ("HammerThrowSpin", "HammerThrow"), ("PoleVaultPlantPole", "PoleVault"),
    ("DiscusRelease", "ThrowDiscus"), ("ShotPutBend", "Shotput"), ("WeightliftingJerk", "CleanAndJerk"),
])
def test_multithumos_sub_actions_occur_with_their_sport(multi_full, part, whole):
    """Ids 21..65 have no THUMOS counterpart; a sport's sub-actions must sit in that sport's videos."""
    with_part = [v for v in multi_full.videos.values() if part in v.labels]
    assert len(with_part) >= 5
    assert np.mean([whole in v.labels for v in with_part]) >= 0.9


def test_bad_inputs_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="missing videoname.npy"):
        load_wtalc(tmp_path)
    bad = tmp_path / "multi.json"
    bad.write_text(json.dumps({"v": {"subset": "testing", "duration": 3.0, "actions": [[66, 0.0, 1.0]]}}))
    with pytest.raises(ValueError, match=r"multi.json: v action 0: class id 66"):
        load_multithumos(bad)
    with pytest.raises(ValueError, match="ends before it starts"):
        activitynet_from_dict({"database": {"v": {"subset": "test", "annotations": [{"segment": [2, 1], "label": "a"}]}}}, "x")
    with pytest.raises(ValueError, match="no video in subset 'val'"):
        load_wtalc(WTALC).subset("val")
