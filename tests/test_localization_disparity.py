"""Clip affinity (paper §3.3) on hand-computed cases."""

import numpy as np
import pytest

from condsel.localization.disparity import (
    affinity,
    disparity,
    motion_mask,
    motion_threshold,
)


def test_disparity_takes_the_max_over_labelled_classes_and_normalizes_per_video():
    rgb = np.array([[2.0, 0.0, 9.0], [1.0, 1.0, 9.0], [0.0, 3.0, 9.0]])
    motion = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    # |diff| for classes 0, 1: rows (2, 0), (0, 1), (0, 2) -> max (2, 1, 2) -> / Gamma = 2; class 2 is not labelled
    np.testing.assert_allclose(disparity(rgb, motion, [0, 1]), [1.0, 0.5, 1.0])
    np.testing.assert_allclose(disparity(rgb, motion, [1]), [0.0, 0.5, 1.0])
    assert np.all(disparity(rgb, rgb, [0]) == 0)
    with pytest.raises(ValueError, match="labelled class"):
        disparity(rgb, motion, [])


def test_top_beta_share_goes_to_motion_with_stable_ties():
    d = np.array([0.1, 0.9, 0.5, 0.5, 0.0, 1.0])
    # ceil(0.4 * 6) = 3 clips: 1.0, 0.9, then the first 0.5
    np.testing.assert_array_equal(motion_mask(d, 0.4), [False, True, True, False, False, True])
    assert motion_threshold(d, 0.4) == 0.5
    assert not motion_mask(d, 0.0).any() and motion_threshold(d, 0.0) == 1.0
    assert motion_mask(d, 1.0).all()
    with pytest.raises(ValueError):
        motion_mask(d, 1.5)


def test_affinity_weights_pseudo_labels_by_distance_to_tau():
    d = np.array([0.1, 0.9, 0.5, 0.2])
    # beta 0.5 -> clips 1, 2 to motion, tau = 0.5; G = Q (|D - tau| + 1)
    expected = np.array([[1.4, 0.0], [0.0, 1.4], [0.0, 1.0], [1.3, 0.0]])
    np.testing.assert_allclose(affinity(d, 0.5), expected, rtol=1e-6)
    np.testing.assert_array_equal(affinity(d, 0.5, soft=False), (expected > 0).astype(np.float32))
