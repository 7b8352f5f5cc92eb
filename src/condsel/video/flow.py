"""Optical flow input for the motion stream (I3D flow), computed with OpenCV.

Kinetics-I3D's flow stream (and pytorch-i3d's port) reads TV-L1 flow whose
displacements, in pixels, are clipped to [-20, 20] and divided by 20, giving
two channels (x, y) in [-1, 1]. TV-L1 lives in OpenCV's contrib build
(``opencv-contrib-python-headless``); the plain headless build this project
depends on has DIS and Farneback, which are used by default. The flow's own
cost is not part of any network's GFLOPs; see ``benchmarks/zoo_latency.py``
for its measured seconds per frame pair.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

FLOW_BOUND = 20.0
METHODS = ("dis", "farneback", "tvl1")


def _estimator(method: str):
    """A callable (prev_gray, next_gray) -> (H, W, 2) float32 flow in pixels."""
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda a, b: dis.calc(a, b, None)
    if method == "farneback":
        # OpenCV's documented defaults: pyramid scale 0.5, 3 levels, window 15,
        # 3 iterations, polynomial neighbourhood 5 with sigma 1.2.
        return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    if method == "tvl1":
        if not hasattr(cv2, "optflow"):
            raise RuntimeError(
                "TV-L1 flow needs OpenCV's contrib modules (pip install "
                "opencv-contrib-python-headless); use method='dis' or 'farneback'"
            )
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        return lambda a, b: tvl1.calc(a, b, None)
    raise ValueError(f"unknown flow method {method!r}; choose one of {METHODS}")


def compute_flow(frames: np.ndarray, method: str = "dis") -> np.ndarray:
    """Flow between consecutive frames: (T, H, W, 3) uint8 RGB -> (T-1, H, W, 2) pixels."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, 3) uint8 RGB frames, got {frames.shape} {frames.dtype}")
    if len(frames) < 2:
        raise ValueError(f"flow needs at least 2 frames, got {len(frames)}")
    estimate = _estimator(method)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    return np.stack([estimate(a, b) for a, b in zip(gray[:-1], gray[1:])]).astype(np.float32)


def scale_flow(flow: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Clip displacements to [-bound, bound] pixels and map them to [-1, 1]."""
    return np.clip(flow, -bound, bound) / bound


def flow_clip(frames: np.ndarray, method: str = "dis") -> torch.Tensor:
    """I3D flow-stream input for a clip: (2, T-1, H, W) float32 in [-1, 1]."""
    flow = scale_flow(compute_flow(frames, method))
    return torch.from_numpy(np.ascontiguousarray(flow.transpose(3, 0, 1, 2)))
