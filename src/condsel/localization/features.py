"""Per-clip feature files: one ``.npy`` of shape (T, D) per video and stream.

Layout (the way BaSNet/UM-style THUMOS'14 I3D features are commonly unpacked)::

    DIR/<stream>/<video>.npy     e.g. DIR/rgb/video_test_0000004.npy, DIR/flow/video_test_0000004.npy

Row t holds clip t's feature; both streams of a video must have the same T.
Files are read with ``allow_pickle=False``: plain float arrays only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from condsel._io import atomic_path


def feature_path(root: str | Path, stream: str, video: str) -> Path:
    return Path(root) / stream / f"{video}.npy"


def load_clip_features(path: str | Path) -> np.ndarray:
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read a plain .npy array: {e}") from e
    if array.ndim != 2 or array.shape[0] == 0 or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{path}: expected a non-empty (T, D) numeric array, got shape {array.shape} dtype {array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: contains NaN or infinite values")
    return array.astype(np.float32, copy=False)


def save_clip_features(array: np.ndarray, root: str | Path, stream: str, video: str) -> Path:
    path = feature_path(root, stream, video)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(array, dtype=np.float32), allow_pickle=False)
    return path


@dataclass
class TwoStreamFeatures:
    names: list[str] = field(default_factory=list)
    rgb: list[np.ndarray] = field(default_factory=list)
    motion: list[np.ndarray] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # video -> why it was skipped


def load_two_streams(root: str | Path, videos: Iterable[str], rgb_stream: str = "rgb", motion_stream: str = "flow") -> TwoStreamFeatures:
    """Both streams of each video; a video with a missing or bad file is recorded and skipped."""
    out = TwoStreamFeatures()
    for video in videos:
        try:
            rgb = load_clip_features(feature_path(root, rgb_stream, video))
            motion = load_clip_features(feature_path(root, motion_stream, video))
            if len(rgb) != len(motion):
                raise ValueError(f"{video}: {rgb_stream} has {len(rgb)} clips but {motion_stream} has {len(motion)}")
            if out.names and (rgb.shape[1], motion.shape[1]) != (out.rgb[0].shape[1], out.motion[0].shape[1]):
                raise ValueError(f"{video}: feature widths {rgb.shape[1]}/{motion.shape[1]} differ from "
                                 f"{out.names[0]}'s {out.rgb[0].shape[1]}/{out.motion[0].shape[1]}")
        except ValueError as e:
            out.failures[video] = str(e)
            continue
        out.names.append(video)
        out.rgb.append(rgb)
        out.motion.append(motion)
    return out
