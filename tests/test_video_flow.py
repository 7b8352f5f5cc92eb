"""Optical flow input for the I3D flow stream, on frames of a real Kinetics clip."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
import torch

from conftest import FIXTURES

from condsel import models
from condsel.video.flow import compute_flow, flow_clip, scale_flow

VIDEO = FIXTURES / "videos" / "arm_wrestling_cut.mp4"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def real_frames() -> np.ndarray:
    """The first 6 frames (256x340 RGB) of a piece of the Kinetics 'arm wrestling' clip."""
    with av.open(str(VIDEO)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == 6:
                break
    return np.stack(frames)


def _shifted_pair(image: np.ndarray, dx: int, dy: int, size: int = 160) -> np.ndarray:
    """Two crops of one real image; the content moves by (dx, dy) pixels from the first to the second."""
    y0, x0 = 50, 120  # the gripped hands, mid-frame: texture in every direction
    first = image[y0 : y0 + size, x0 : x0 + size]
    second = image[y0 - dy : y0 - dy + size, x0 - dx : x0 - dx + size]
    return np.stack([first, second])


@pytest.mark.parametrize("method", ["dis", "farneback"])
@pytest.mark.parametrize("dx, dy", [(3, -2), (-5, 4)])
def test_flow_recovers_a_known_translation(real_frames, method, dx, dy):
    flow = compute_flow(_shifted_pair(real_frames[0], dx, dy), method)
    assert flow.shape == (1, 160, 160, 2)
    interior = flow[0, 20:-20, 20:-20]
    assert np.median(interior[..., 0]) == pytest.approx(dx, abs=0.5)
    assert np.median(interior[..., 1]) == pytest.approx(dy, abs=0.5)


def test_scale_clips_at_20_pixels_and_maps_to_unit_range():
    flow = np.array([-45.0, -20.0, -10.0, 0.0, 5.0, 20.0, 31.0], dtype=np.float32)
    np.testing.assert_allclose(scale_flow(flow), [-1.0, -1.0, -0.5, 0.0, 0.25, 1.0, 1.0])


def test_flow_clip_feeds_i3d_flow(real_frames):
    frames = np.stack([cv2.resize(f, (112, 112), interpolation=cv2.INTER_AREA) for f in real_frames])
    clip = flow_clip(frames)
    assert clip.shape == (2, 5, 112, 112) and clip.dtype == torch.float32
    assert clip.abs().max() <= 1.0
    np.testing.assert_allclose(clip.numpy(), scale_flow(compute_flow(frames)).transpose(3, 0, 1, 2))
    with torch.no_grad():
        logits = models.create_model("i3d_flow", num_classes=4)(clip[None])
    assert logits.shape == (1, 4)


def test_bad_input_and_methods_are_refused(real_frames):
    with pytest.raises(ValueError, match="uint8"):
        compute_flow(real_frames.astype(np.float32))
    with pytest.raises(ValueError, match="at least 2 frames"):
        compute_flow(real_frames[:1])
    with pytest.raises(ValueError, match="unknown flow method 'raft'"):
        compute_flow(real_frames[:2], "raft")
    if not hasattr(cv2, "optflow"):
        with pytest.raises(RuntimeError, match="opencv-contrib-python-headless"):
            compute_flow(real_frames[:2], "tvl1")
