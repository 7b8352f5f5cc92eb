"""A synthetic untrimmed-video benchmark where appearance fires on context and motion does not.

SYNTHETIC DATA, rendered from pixels; no real video is involved. It mimics the
paper's "running track after a long jump": each action class has a scene (its
"track"), and that scene fills a *context block* much longer than the action
inside it. In the block an actor idles; during the action the actor moves fast
in a class-specific direction. Between blocks come generic scenes (shared by
all classes), where the actor is absent or walks slowly.

- Appearance features see the scene and the actor but not their motion, so an
  RGB-stream head fires on the whole context block: good classification, poor
  boundaries.
- Motion features (OpenCV Farneback optical flow pooled per clip) see the fast
  actor and little else, so a motion-stream head finds the boundaries, but
  classes 2k and 2k+1 share a direction: motion alone confuses them.
- The disparity between the two streams is therefore high on context clips and
  low on generic ones, and a selector that reads appearance features can learn
  to send the context blocks, and only them, to the motion stream.

A video is ``clips`` clips of ``frames_per_clip`` frames of ``size`` x ``size``
pixels; one clip lasts one second (segment times are in clip units).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from condsel.datasets.thumos import GroundTruth, VideoAnnotation

ACTOR = np.array([250, 250, 250], dtype=np.uint8)
ACTOR_SIZE = 6


@dataclass(frozen=True)
class SyntheticConfig:
    num_classes: int = 4
    train_videos: int = 80
    test_videos: int = 40
    min_clips: int = 48
    max_clips: int = 80
    frames_per_clip: int = 2
    size: int = 32
    generic_scenes: int = 6
    two_class_share: float = 0.2  # videos with a second context block of another class
    action_speed: float = 3.0  # pixels per frame
    walk_speed: float = 1.0
    camera_jitter: float = 0.15  # std of the camera's per-frame random walk, pixels
    appearance_dim: int = 32
    clip_seconds: float = 1.0


@dataclass(frozen=True)
class SyntheticSplit:
    names: list[str]
    rgb: list[np.ndarray]  # (T, D_rgb) appearance features per video
    motion: list[np.ndarray]  # (T, D_motion) flow features per video
    flow_seconds: float  # wall time spent computing optical flow


@dataclass(frozen=True)
class SyntheticBenchmark:
    config: SyntheticConfig
    classes: tuple[str, ...]
    gt: GroundTruth  # subsets "train" and "test"
    train: SyntheticSplit
    test: SyntheticSplit
    foreground: dict[str, np.ndarray]  # per video (T,) bool: clip overlaps an action
    context: dict[str, np.ndarray]  # per video (T,) bool: clip shows an action's scene


def _to_uint8(images: list[np.ndarray]) -> np.ndarray:
    return np.clip(np.stack(images), 0, 255).astype(np.uint8)


def _textures(rng: np.random.Generator, cfg: SyntheticConfig) -> tuple[np.ndarray, np.ndarray]:
    """Class scenes (striped, class colours) and generic scenes (blotchy, muted), with a margin for camera motion."""
    side = cfg.size + 16
    yy, xx = np.mgrid[0:side, 0:side]
    scenes = []
    for c in range(cfg.num_classes):
        a, b = rng.integers(40, 200, size=(2, 3))
        period = 4 + 2 * (c % 3)
        angle = np.pi * c / cfg.num_classes
        stripes = (np.cos(angle) * xx + np.sin(angle) * yy) % (2 * period) < period
        img = np.where(stripes[..., None], a, b) + rng.normal(0, 8, (side, side, 3))
        scenes.append(img)
    generic = []
    for _ in range(cfg.generic_scenes):
        coarse = rng.integers(60, 160, size=(4, 4, 3)).astype(np.float32)
        img = cv2.resize(coarse, (side, side), interpolation=cv2.INTER_LINEAR) + rng.normal(0, 8, (side, side, 3))
        generic.append(img)
    return _to_uint8(scenes), _to_uint8(generic)


def _plan_video(rng: np.random.Generator, cfg: SyntheticConfig, label: int) -> dict:
    """Per-frame scene id (class c, or -(g+1) for generic g), actor state and the GT segments in frames."""
    clips = int(rng.integers(cfg.min_clips, cfg.max_clips + 1))
    frames = clips * cfg.frames_per_clip
    labels = [label]
    if rng.random() < cfg.two_class_share:
        labels.append(int((label + 1 + rng.integers(cfg.num_classes - 1)) % cfg.num_classes))
    scene = np.full(frames, -(int(rng.integers(cfg.generic_scenes)) + 1))
    # Generic scenes change a few times; context blocks are laid over them.
    for cut in np.sort(rng.integers(0, frames, size=2)):
        scene[cut:] = -(int(rng.integers(cfg.generic_scenes)) + 1)
    state = np.full(frames, 2 if rng.random() < 0.5 else 0)  # 0 absent, 1 idle, 2 walking, 3 action
    slot = frames // len(labels)
    segments = []
    for i, c in enumerate(labels):
        length = int(rng.uniform(0.35, 0.55) * slot)
        start = i * slot + int(rng.integers(0, slot - length + 1))
        scene[start : start + length] = c
        state[start : start + length] = 1
        actions = int(rng.integers(1, 3))
        sub = length // actions
        for j in range(actions):
            longest = min(8 * cfg.frames_per_clip, sub - 2 * cfg.frames_per_clip)
            act = int(rng.integers(2 * cfg.frames_per_clip, longest + 1))
            a0 = start + j * sub + cfg.frames_per_clip + int(rng.integers(0, sub - 2 * cfg.frames_per_clip - act + 1))
            state[a0 : a0 + act] = 3
            segments.append((a0, a0 + act, c))
    return {"scene": scene, "state": state, "segments": segments, "labels": labels}


def _directions(num_classes: int) -> np.ndarray:
    """Unit motion direction per class; classes 2k and 2k+1 share one."""
    angles = 2 * np.pi * (np.arange(num_classes) // 2) / max(1, (num_classes + 1) // 2)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _render(rng: np.random.Generator, cfg: SyntheticConfig, plan: dict, scenes: np.ndarray, generic: np.ndarray) -> np.ndarray:
    frames = len(plan["scene"])
    out = np.empty((frames, cfg.size, cfg.size, 3), dtype=np.uint8)
    camera = np.clip(np.cumsum(rng.normal(0, cfg.camera_jitter, (frames, 2)), axis=0), -7, 7)
    pos = rng.uniform(4, cfg.size - 4 - ACTOR_SIZE, 2)
    walk = rng.normal(size=2)
    walk *= cfg.walk_speed / np.linalg.norm(walk)
    directions = _directions(cfg.num_classes)
    span = cfg.size - ACTOR_SIZE
    for f in range(frames):
        s = plan["scene"][f]
        texture = scenes[s] if s >= 0 else generic[-s - 1]
        ox, oy = np.rint(camera[f] + 8).astype(int)
        frame = texture[oy : oy + cfg.size, ox : ox + cfg.size].copy()
        state = plan["state"][f]
        if state == 3:
            pos = (pos + cfg.action_speed * directions[s]) % span
        elif state == 2:
            pos = (pos + walk) % span
        elif state == 1:
            pos = np.clip(pos + rng.normal(0, 0.3, 2), 0, span)
        if state:
            x, y = np.rint(pos).astype(int)
            frame[y : y + ACTOR_SIZE, x : x + ACTOR_SIZE] = ACTOR
        out[f] = frame
    return out


class _AppearanceNet:
    """Fixed, seeded random features of a frame: its 8 x 8 area-pooled colours through a
    random linear layer and a ReLU (a stand-in for an appearance backbone)."""

    def __init__(self, seed: int, dim: int) -> None:
        rng = np.random.default_rng(seed + 7919)
        self.weight = rng.normal(0, 1 / np.sqrt(192), (192, dim)).astype(np.float32)
        self.bias = rng.normal(0, 0.1, dim).astype(np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        pooled = np.stack([cv2.resize(f, (8, 8), interpolation=cv2.INTER_AREA) for f in frames])
        x = pooled.reshape(len(frames), -1).astype(np.float32) / 255.0 - 0.5
        return np.maximum(x @ self.weight + self.bias, 0.0)


def flow_features(video: np.ndarray, frames_per_clip: int) -> np.ndarray:
    """(T, 19) motion features: Farneback flow between consecutive frames of each clip, pooled
    per clip into a magnitude-weighted 8-bin direction histogram, mean and max speed, the
    share of moving pixels (> 1 px/frame) and the mean flow of each image quadrant."""
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in video]
    clips = len(video) // frames_per_clip
    flows = np.stack([
        cv2.calcOpticalFlowFarneback(gray[i], gray[i + 1], None, 0.5, 2, 9, 3, 5, 1.1, 0)
        for c in range(clips) for i in range(c * frames_per_clip, (c + 1) * frames_per_clip - 1)
    ]).reshape(clips, -1, *video.shape[1:3], 2)
    mag = np.hypot(flows[..., 0], flows[..., 1])
    bins = ((np.arctan2(flows[..., 1], flows[..., 0]) + np.pi) / (2 * np.pi) * 8).astype(np.int64) % 8
    weights = mag.reshape(clips, -1)
    hist = np.stack([np.bincount(b, weights=w, minlength=8) for b, w in zip(bins.reshape(clips, -1), weights)]) / weights.shape[1]
    h = video.shape[1] // 2
    quads = [flows[:, :, i:i + h, j:j + h].mean(axis=(1, 2, 3)) for i in (0, h) for j in (0, h)]
    stats = np.stack([weights.mean(axis=1), weights.max(axis=1), (weights > 1.0).mean(axis=1)], axis=1)
    return np.concatenate([hist, stats, *quads], axis=1)


def _split(
    rng: np.random.Generator, cfg: SyntheticConfig, names: list[str], labels: list[int],
    scenes: np.ndarray, generic: np.ndarray, appearance: _AppearanceNet, records: dict[str, dict],
) -> SyntheticSplit:
    """Render each video, extract both streams' features, and keep its plan in ``records``."""
    rgb, motion = [], []
    flow_seconds = 0.0
    for name, label in zip(names, labels):
        plan = _plan_video(rng, cfg, label)
        video = _render(rng, cfg, plan, scenes, generic)
        clips = video.reshape(-1, cfg.frames_per_clip, cfg.size, cfg.size, 3)
        rgb.append(appearance(clips[:, cfg.frames_per_clip // 2]).astype(np.float32))
        start = time.perf_counter()
        motion.append(flow_features(video, cfg.frames_per_clip).astype(np.float32))
        flow_seconds += time.perf_counter() - start
        records[name] = plan
    return SyntheticSplit(list(names), rgb, motion, flow_seconds)


def make_benchmark(seed: int = 0, config: SyntheticConfig = SyntheticConfig()) -> SyntheticBenchmark:
    """Render the train and test videos and their features; same seed, same benchmark."""
    if config.min_clips < 48 or config.max_clips < config.min_clips:
        raise ValueError("need 48 <= min_clips <= max_clips: two context blocks of two actions each must fit")
    rng = np.random.default_rng(seed)
    scenes, generic = _textures(rng, config)
    appearance = _AppearanceNet(seed, config.appearance_dim)
    classes = tuple(f"action{c}" for c in range(config.num_classes))
    records: dict[str, dict] = {}
    splits = {}
    for subset, count in (("train", config.train_videos), ("test", config.test_videos)):
        names = [f"{subset}_{i:04d}" for i in range(count)]
        labels = [i % config.num_classes for i in range(count)]
        splits[subset] = _split(rng, config, names, labels, scenes, generic, appearance, records)
    fpc, sec = config.frames_per_clip, config.clip_seconds
    videos, foreground, context = {}, {}, {}
    for name, plan in records.items():
        segs = plan["segments"]
        videos[name] = VideoAnnotation(
            subset=name.split("_")[0],
            segments=np.array([[a / fpc * sec, b / fpc * sec] for a, b, _ in segs]).reshape(-1, 2),
            labels=tuple(classes[c] for _, _, c in segs),
            duration=len(plan["scene"]) / fpc * sec,
            tags=tuple(classes[c] for c in sorted(set(plan["labels"]))),
        )
        foreground[name] = (plan["state"] == 3).reshape(-1, fpc).any(axis=1)
        context[name] = (plan["scene"] >= 0).reshape(-1, fpc).any(axis=1)
    return SyntheticBenchmark(config, classes, GroundTruth(classes, videos, "synthetic"),
                              splits["train"], splits["test"], foreground, context)
