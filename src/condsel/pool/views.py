"""Which frames a pool needs from one video, and every member's test views from them.

The one place where a video becomes model input: ``extract`` (offline) and
``predict`` / ``serve`` (online) all decode with :func:`decode_for_plan` and
cut views with :func:`member_views`, so stored and served scores cannot skew.

A whole video is one window; an untrimmed video cut into consecutive windows
of ``per_clip_seconds`` gets each member's full set of test views (clips x
crops, PySlowFast-style) inside every window, so each window is scored as a
trimmed clip would be. The frames of all windows and all members are decoded
in one pass (see ``condsel.video.decode``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pathlib import Path

from condsel.video.decode import DecodedVideo, decode_video
from condsel.video.sampling import ClipSpec, test_clip_indices, test_views


@dataclass(frozen=True)
class ViewPlan:
    specs: dict[str, ClipSpec]  # member name -> how it reads a video
    per_clip_seconds: float | None = None
    decode_size: int | None = None  # decode at this short side (a subset of a pool decodes as the whole pool)

    @property
    def short_side(self) -> int:
        """Decode at the largest size any member reads, so no member upsamples."""
        return self.decode_size or max(s.size for s in self.specs.values())


def frame_windows(num_frames: int, fps: float, per_clip_seconds: float | None) -> np.ndarray:
    """(K, 2) [start, end) source frame bounds: the whole video, or consecutive windows.

    A last window shorter than half a window is merged into the one before.
    """
    if per_clip_seconds is None:
        return np.array([[0, num_frames]], dtype=np.int64)
    length = per_clip_seconds * fps
    count = max(1, math.floor(num_frames / length + 0.5))
    starts = np.floor(np.arange(count) * length + 1e-6).astype(np.int64)
    return np.stack([starts, np.append(starts[1:], num_frames)], axis=1)


def frame_selector(plan: ViewPlan):
    """A ``decode_video`` frame selector for every view of every member in every window."""

    def select(num_frames: int, fps: float) -> np.ndarray:
        wanted = [
            start + test_clip_indices(spec, end - start, fps).ravel()
            for start, end in frame_windows(num_frames, fps, plan.per_clip_seconds)
            for spec in plan.specs.values()
        ]
        return np.unique(np.concatenate(wanted))

    return select


def window(video: DecodedVideo, start: int, end: int) -> DecodedVideo:
    """Frames [start, end) of ``video`` as a video of their own, indexed from 0."""
    keep = (video.indices >= start) & (video.indices < end)
    return DecodedVideo(video.path, video.frames[keep], video.indices[keep] - start, int(end - start), video.fps)


def decode_for_plan(path: str | Path, plan: ViewPlan) -> DecodedVideo:
    """Decode, once, every frame any member of ``plan`` reads, at the plan's short side."""
    return decode_video(path, frame_selector(plan), short_side=plan.short_side)


def member_views(video: DecodedVideo, spec: ClipSpec, per_clip_seconds: float | None = None) -> np.ndarray:
    """One member's views (K, V, T, S, S, 3) uint8: its test views in each of the video's K windows."""
    bounds = frame_windows(video.num_frames, video.fps, per_clip_seconds)
    return np.stack([test_views(window(video, start, end), spec) for start, end in bounds])


def sample_views(video: DecodedVideo, plan: ViewPlan) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Window bounds in seconds (K, 2) and each member's views (K, V, T, S, S, 3) uint8."""
    bounds = frame_windows(video.num_frames, video.fps, plan.per_clip_seconds)
    views = {name: member_views(video, spec, plan.per_clip_seconds) for name, spec in plan.specs.items()}
    return bounds / video.fps, views

