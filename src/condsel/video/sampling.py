"""Per-model clip sampling and normalisation, following PySlowFast's multi-view testing.

A model reads ``num_frames`` frames ``stride`` apart (counted at ``target_fps``,
so a clip spans the same time at any source frame rate). At test time it sees
``clips`` temporal clips spaced uniformly over the video, each cut into
``crops`` square crops (1: centre; 3: left/centre/right along the long side)
after resizing the short side to ``size``; its prediction averages the views.
Training takes one random clip and one random crop instead. No horizontal
flip: it would swap left- and right-moving classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch

from condsel.video.decode import DecodedVideo, FrameSelector

# PySlowFast's default DATA.MEAN / DATA.STD, applied to RGB scaled to [0, 1].
MEAN = 0.45
STD = 0.225


@dataclass(frozen=True)
class ClipSpec:
    """How one model reads a video."""

    num_frames: int
    stride: int
    size: int
    clips: int = 1
    crops: int = 1
    target_fps: float = 8.0

    def __post_init__(self):
        if min(self.num_frames, self.stride, self.size, self.clips) < 1:
            raise ValueError(f"ClipSpec needs positive num_frames, stride, size and clips: {self}")
        if self.crops not in (1, 3):
            raise ValueError(f"ClipSpec.crops must be 1 (centre) or 3 (left/centre/right), got {self.crops}")

    @property
    def views(self) -> int:
        return self.clips * self.crops

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ClipSpec:
        return cls(**d)


def clip_indices(spec: ClipSpec, num_frames: int, fps: float, start: float) -> np.ndarray:
    """Source frame indices of one clip beginning at source frame ``start``."""
    step = spec.stride * fps / spec.target_fps
    idx = np.floor(start + step * np.arange(spec.num_frames) + 1e-6).astype(np.int64)
    return np.clip(idx, 0, num_frames - 1)


def _clip_span(spec: ClipSpec, fps: float) -> float:
    return spec.num_frames * spec.stride * fps / spec.target_fps


def test_clip_indices(spec: ClipSpec, num_frames: int, fps: float) -> np.ndarray:
    """(clips, num_frames) indices: one centred clip, or ``clips`` spread evenly from first to last frame."""
    delta = max(num_frames - _clip_span(spec, fps), 0.0)
    starts = [delta / 2] if spec.clips == 1 else np.linspace(0.0, delta, spec.clips)
    return np.stack([clip_indices(spec, num_frames, fps, s) for s in starts])


def frames_needed(specs: Sequence[ClipSpec]) -> FrameSelector:
    """The frame selector that decodes, once, every frame any of ``specs`` tests on."""

    def select(num_frames: int, fps: float) -> np.ndarray:
        return np.unique(np.concatenate([test_clip_indices(s, num_frames, fps).ravel() for s in specs]))

    return select


def frames_for(video: DecodedVideo, spec: ClipSpec) -> DecodedVideo:
    """The rows of ``video`` that ``test_views(video, spec)`` reads, and no others.

    A video decoded once for a whole pool holds every member's frames; a
    member served in another process gets only its own (``condsel serve``
    sends far fewer bytes), and its views are unchanged: each wanted index
    still maps to the same decoded frame.
    """
    wanted = test_clip_indices(spec, video.num_frames, video.fps).ravel()
    rows = np.unique(np.clip(np.searchsorted(video.indices, wanted, side="right") - 1, 0, len(video.indices) - 1))
    return DecodedVideo(video.path, video.frames[rows], video.indices[rows], video.num_frames, video.fps)


def resize_short_side(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) uint8 -> short side ``size``, aspect kept (area filter when shrinking)."""
    _, h, w, _ = frames.shape
    if min(h, w) == size:
        return frames
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (new_w, new_h), interpolation=interp) for f in frames])


def _crop_offsets(length: int, size: int, crops: int) -> list[int]:
    if crops == 1:
        return [(length - size) // 2]
    return [0, (length - size) // 2, length - size]


def spatial_crops(frames: np.ndarray, size: int, crops: int) -> list[np.ndarray]:
    """Square crops of short-side-resized (T, H, W, 3) frames, spread along the long side."""
    _, h, w, _ = frames.shape
    if w >= h:
        top = (h - size) // 2
        return [frames[:, top : top + size, x : x + size] for x in _crop_offsets(w, size, crops)]
    left = (w - size) // 2
    return [frames[:, y : y + size, left : left + size] for y in _crop_offsets(h, size, crops)]


def test_views(video: DecodedVideo, spec: ClipSpec) -> np.ndarray:
    """(views, num_frames, size, size, 3) uint8: every clip × crop of ``spec``, clip-major."""
    idx = test_clip_indices(spec, video.num_frames, video.fps)
    views = []
    for clip in idx:
        frames = resize_short_side(video.take(clip), spec.size)
        views.extend(spatial_crops(frames, spec.size, spec.crops))
    return np.stack(views)


def train_view(frames: np.ndarray, spec: ClipSpec, fps: float, rng: np.random.Generator) -> np.ndarray:
    """One random clip and random crop from all frames of a video, already short-side resized to ``spec.size``."""
    num_frames = len(frames)
    delta = max(num_frames - _clip_span(spec, fps), 0.0)
    clip = frames[clip_indices(spec, num_frames, fps, rng.uniform(0.0, delta))]
    _, h, w, _ = clip.shape
    y = int(rng.integers(0, h - spec.size + 1))
    x = int(rng.integers(0, w - spec.size + 1))
    return clip[:, y : y + spec.size, x : x + spec.size]


def to_model_input(views: np.ndarray) -> torch.Tensor:
    """(B, T, S, S, 3) uint8 -> (B, 3, T, S, S) float32, normalised like PySlowFast."""
    x = torch.from_numpy(np.ascontiguousarray(views)).permute(0, 4, 1, 2, 3).float()
    return x.div_(255.0).sub_(MEAN).div_(STD)
