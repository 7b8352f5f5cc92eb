"""CAS -> segments: fragments and merges, contrast scores, NMS, and a recovered action."""

import numpy as np

from condsel.localization.proposals import (
    ProposalConfig,
    candidate_segments,
    contrast_scores,
    nms,
    video_detections,
)


def test_candidates_are_runs_per_threshold_plus_merges_across_small_gaps():
    level = np.array([0.0, 0.9, 0.9, 0.2, 0.8, 0.0, 0.0, 0.0, 0.6, 0.0])
    got = candidate_segments(level, thresholds=(0.5, 0.85), max_merge=2, max_gap=1)
    # t=0.5 runs [1,3) [4,5) [8,9); gap 1 merges [1,5); gap 3 does not; t=0.85 run [1,3)
    assert got.tolist() == [[1, 3], [1, 5], [4, 5], [8, 9]]
    three = candidate_segments(level, thresholds=(0.5,), max_merge=3, max_gap=3)
    assert [1, 9] in three.tolist() and [4, 9] in three.tolist()


def test_contrast_is_inner_mean_minus_flank_mean():
    track = np.array([0.0, 1.0, 5.0, 5.0, 5.0, 5.0, 1.0, 3.0])
    # [2, 6): inner 5; flank max(1, round(4/4)) = 1 clip each side: (1 + 1) / 2 -> 4
    # [0, 2): inner 0.5; left flank empty, right flank [2, 3) = 5 -> -4.5
    np.testing.assert_allclose(contrast_scores(track, np.array([[2, 6], [0, 2]])), [4.0, -4.5])


def test_nms_keeps_best_and_drops_overlaps():
    segments = np.array([[0.0, 10.0], [1.0, 10.0], [20.0, 30.0], [0.0, 4.0]])
    scores = np.array([0.9, 0.95, 0.5, 0.4])
    assert nms(segments, scores, tiou=0.5).tolist() == [1, 2, 3]


def test_a_clean_cas_box_is_recovered_exactly():
    cas = np.zeros((40, 3))
    cas[10:18, 1] = 4.0
    cas[:, 0] = 0.5
    dets = video_detections(cas, "v", ("a", "b", "c"), clip_seconds=0.5, config=ProposalConfig())
    best = np.argmax(dets.scores)
    assert dets.labels[best] == "b"
    assert dets.segments[best].tolist() == [5.0, 9.0]
    assert set(dets.videos.tolist()) == {"v"}
