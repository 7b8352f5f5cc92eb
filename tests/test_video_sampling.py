"""Clip sampling against hand-computed indices, crops and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from condsel.video import (
    sampling,  # by module: pytest would collect test_views / test_clip_indices as tests
)
from condsel.video.decode import DecodedVideo
from condsel.video.sampling import (
    ClipSpec,
    clip_indices,
    frames_for,
    frames_needed,
    resize_short_side,
    spatial_crops,
    to_model_input,
    train_view,
)


def _video(num_frames: int, height: int, width: int, fps: float = 8.0) -> DecodedVideo:
    """Frame t has the value t everywhere, and column x of channel 1 has the value x (to locate crops)."""
    frames = np.zeros((num_frames, height, width, 3), dtype=np.uint8)
    frames[..., 0] = np.arange(num_frames)[:, None, None]
    frames[..., 1] = np.arange(width)[None, None, :]
    return DecodedVideo("synthetic", frames, np.arange(num_frames), num_frames, fps)


def test_stride_is_counted_at_the_target_frame_rate():
    spec = ClipSpec(num_frames=4, stride=2, size=8, target_fps=8)
    assert clip_indices(spec, 100, fps=8.0, start=0).tolist() == [0, 2, 4, 6]
    assert clip_indices(spec, 100, fps=24.0, start=3).tolist() == [3, 9, 15, 21]  # 3x the frame rate, 3x the step
    assert clip_indices(spec, 5, fps=8.0, start=0).tolist() == [0, 2, 4, 4]  # clamped to the last frame


def test_test_clips_are_centred_or_spread_from_first_to_last_frame():
    one = ClipSpec(num_frames=4, stride=1, size=8)
    assert sampling.test_clip_indices(one, 16, 8.0).tolist() == [[6, 7, 8, 9]]  # (16 - 4) / 2 = 6
    three = ClipSpec(num_frames=4, stride=2, size=8, clips=3)
    # span 8 frames, delta 8: starts 0, 4, 8
    assert sampling.test_clip_indices(three, 16, 8.0).tolist() == [[0, 2, 4, 6], [4, 6, 8, 10], [8, 10, 12, 14]]
    # a video shorter than the clip repeats its last frame
    assert sampling.test_clip_indices(ClipSpec(num_frames=4, stride=2, size=8, clips=2), 5, 8.0).tolist() == [[0, 2, 4, 4]] * 2


def test_frames_needed_is_the_union_of_every_specs_test_frames():
    select = frames_needed([ClipSpec(4, 1, 8), ClipSpec(2, 4, 8, clips=2)])
    # spec 1: centred [6..9]; spec 2: span 8, starts 0 and 8 -> [0, 4], [8, 12]
    assert select(16, 8.0).tolist() == [0, 4, 6, 7, 8, 9, 12]


def test_three_crops_are_left_centre_right_along_the_long_side():
    frames = _video(2, 48, 64).frames
    crops = spatial_crops(frames, 48, 3)
    assert [c[0, 0, 0, 1] for c in crops] == [0, 8, 16]
    assert all(c.shape == (2, 48, 48, 3) for c in crops)
    tall = np.transpose(frames, (0, 2, 1, 3))  # 64 high, 48 wide: channel 1 now counts rows, crops move down
    assert [c[0, 0, 0, 1] for c in spatial_crops(tall, 48, 3)] == [0, 8, 16]
    assert [c[0, 0, 0, 1] for c in spatial_crops(tall, 48, 1)] == [8]


def test_resize_short_side_keeps_the_aspect():
    frames = _video(3, 48, 64).frames
    assert resize_short_side(frames, 24).shape == (3, 24, 32, 3)
    assert resize_short_side(frames, 48) is frames
    assert resize_short_side(frames, 96).shape == (3, 96, 128, 3)


def test_test_views_are_clip_major_and_sample_the_right_frames():
    video = _video(16, 48, 64)
    spec = ClipSpec(num_frames=4, stride=2, size=48, clips=2, crops=3)
    views = sampling.test_views(video, spec)
    assert views.shape == (6, 4, 48, 48, 3)
    # clips start at 0 and 8; frame value = index
    assert views[:, :, 0, 0, 0].tolist() == [[0, 2, 4, 6]] * 3 + [[8, 10, 12, 14]] * 3
    assert views[:3, 0, 0, 0, 1].tolist() == [0, 8, 16]


def test_train_view_is_a_random_crop_and_clip_of_the_right_size():
    spec = ClipSpec(num_frames=4, stride=1, size=32)
    frames = resize_short_side(_video(16, 48, 64).frames, 32)  # 32 x 43
    rng = np.random.default_rng(0)
    starts, lefts = set(), set()
    for _ in range(50):
        view = train_view(frames, spec, 8.0, rng)
        assert view.shape == (4, 32, 32, 3)
        first = int(view[0, 0, 0, 0])
        assert np.diff(view[:, 0, 0, 0].astype(int)).tolist() == [1, 1, 1] and 0 <= first <= 12
        starts.add(first)
        lefts.add(int(view[0, 0, 0, 1]))
    assert len(starts) > 5 and len(lefts) > 5


def test_model_input_is_channels_first_and_normalised_like_pyslowfast():
    views = np.zeros((2, 4, 8, 8, 3), dtype=np.uint8)
    views[1] = 255
    x = to_model_input(views)
    assert x.shape == (2, 3, 4, 8, 8) and x.dtype == torch.float32
    assert x[0].unique().tolist() == pytest.approx([(0 - 0.45) / 0.225])
    assert x[1].unique().tolist() == pytest.approx([(1 - 0.45) / 0.225])


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="crops"):
        ClipSpec(num_frames=4, stride=1, size=8, crops=2)
    with pytest.raises(ValueError, match="positive"):
        ClipSpec(num_frames=0, stride=1, size=8)


@pytest.mark.parametrize("missing", [[], [0, 1, 2], [5, 6, 7, 8, 9]])
def test_frames_for_keeps_only_a_specs_frames_and_its_views(missing):
    """A pool's decoded frames (some absent, as after a short decode) cut to one spec's: same views, fewer rows."""
    small, large = ClipSpec(num_frames=4, stride=4, size=32), ClipSpec(num_frames=8, stride=1, size=48, clips=2, crops=3)
    full = _video(40, 48, 64)
    keep = np.setdiff1d(frames_needed([small, large])(40, 8.0), missing)
    video = DecodedVideo("v", full.frames[keep], keep, 40, 8.0)
    for spec in (small, large):
        cut = frames_for(video, spec)
        assert len(cut.indices) < len(video.indices) and set(cut.indices) <= set(video.indices)
        np.testing.assert_array_equal(sampling.test_views(cut, spec), sampling.test_views(video, spec))
    # hand check: the small spec's centred clip over 40 frames at stride 4 reads frames 12, 16, 20, 24
    assert frames_for(_video(40, 48, 64), small).indices.tolist() == [12, 16, 20, 24]
