"""Temporal action annotations: THUMOS'14 (W-TALC npy, ActivityNet json) and MultiThumos.

Every source is read into one in-memory form, :class:`GroundTruth`: per video a
subset name (kept exactly as the source spells it: W-TALC says ``validation``,
the BaSNet json ``train``, MultiThumos ``training``), the segments in seconds
with their class names, and the video-level labels used for weak supervision.

W-TALC's annotations are pickled object arrays; they are read through
:func:`condsel._io.load_npy`, which rebuilds numpy arrays and nothing else,
and only for the file names in :data:`WTALC_FILES`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from condsel._io import load_npy
from condsel.errors import names_the_file

# The files of a W-TALC annotation folder (sujoyp/wtalc-pytorch, Thumos14reduced-Annotations/).
WTALC_FILES = ("videoname", "subset", "classlist", "labels", "segments", "duration", "labels_all")
AMBIGUOUS_FILE = "Ambiguous_test.txt"

# MultiTHUMOS class_list.txt order (ids 1..65): the 20 THUMOS'14 detection classes
# first, then the 45 MultiTHUMOS classes. Transcribed from the class list as used by
# Media-Smart/vedatad (MultiThumosDataset.CLASSES); tests check it against the ids in
# multithumos.json (ids 1..20 against the THUMOS'14 segments, sub-actions against the
# parent action they co-occur with).
MULTITHUMOS_CLASSES = (
    "BaseballPitch", "BasketballDunk", "Billiards", "CleanAndJerk", "CliffDiving",
    "CricketBowling", "CricketShot", "Diving", "FrisbeeCatch", "GolfSwing",
    "HammerThrow", "HighJump", "JavelinThrow", "LongJump", "PoleVault",
    "Shotput", "SoccerPenalty", "TennisSwing", "ThrowDiscus", "VolleyballSpiking",
    "Walk", "Sit", "StandUp", "Stand", "Run", "Jump", "Fall", "PickUp", "Hug",
    "PatPerson", "HighFive", "FistPump", "ClapHands", "OneRaisedArmCelebrate",
    "TwoRaisedArmCelebrate", "Throw", "Drop", "OneHandedCatch", "TwoHandedCatch",
    "BodyRoll", "BodyTurn", "BodyBend", "BodyContract", "Squat", "BasketballDribble",
    "BasketballPass", "BasketballBlock", "BasketballShot", "BasketballGuard",
    "VolleyballSet", "VolleyballBump", "VolleyballBlock", "VolleyballServe",
    "WeightliftingClean", "WeightliftingJerk", "HammerThrowWindUp", "HammerThrowSpin",
    "HammerThrowRelease", "PoleVaultPlantPole", "ShotPutBend", "DiscusWindUp",
    "DiscusRelease", "TalkToCamera", "CloseUpTalkToCamera", "NoHuman",
)


@dataclass(frozen=True)
class VideoAnnotation:
    subset: str
    segments: np.ndarray  # (n, 2) float64 seconds [start, end]
    labels: tuple[str, ...]  # class name of each segment
    duration: float | None = None
    # Video-level labels for weak supervision when the source states them apart from
    # the segments (W-TALC's labels_all); otherwise the segments' distinct classes.
    tags: tuple[str, ...] | None = None

    @property
    def video_labels(self) -> tuple[str, ...]:
        return self.tags if self.tags is not None else tuple(sorted(set(self.labels)))


@dataclass(frozen=True)
class GroundTruth:
    classes: tuple[str, ...]  # vocabulary in index order
    videos: dict[str, VideoAnnotation]
    source: str = ""
    class_index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_index", {c: i for i, c in enumerate(self.classes)})
        for name, video in self.videos.items():
            unknown = set(video.labels) - set(self.class_index)
            if unknown:
                raise ValueError(f"{self.source}: video {name} has labels outside the class list: {sorted(unknown)}")

    def subsets(self) -> list[str]:
        return sorted({v.subset for v in self.videos.values()})

    def subset(self, name: str) -> GroundTruth:
        videos = {k: v for k, v in self.videos.items() if v.subset == name}
        if not videos:
            raise ValueError(f"{self.source}: no video in subset {name!r}; subsets are {self.subsets()}")
        return GroundTruth(self.classes, videos, self.source)

    def segment_counts(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for v in self.videos.values():
            counts[v.subset] += len(v.labels)
        return dict(counts)

    def label_matrix(self, names: list[str]) -> np.ndarray:
        """(N, C) 0/1 video-level labels of the named videos, in class-index order."""
        out = np.zeros((len(names), len(self.classes)), dtype=np.float32)
        for row, name in enumerate(names):
            for label in self.videos[name].video_labels:
                out[row, self.class_index[label]] = 1.0
        return out


def _decode(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def load_wtalc(folder: str | Path) -> GroundTruth:
    """Read W-TALC's THUMOS'14 annotation folder (validation = train, test = test)."""
    folder = Path(folder)
    arrays = {}
    for name in WTALC_FILES:
        path = folder / f"{name}.npy"
        if name == "labels_all" and not path.exists():
            continue
        if not path.exists():
            raise ValueError(f"{folder}: missing {path.name}; a W-TALC annotation folder holds {', '.join(WTALC_FILES)}")
        arrays[name] = load_npy(path, encoding="bytes")  # Python-2 pickles: str came as bytes
    names = [_decode(v) for v in arrays["videoname"]]
    n = len(names)
    for key, array in arrays.items():
        if key != "classlist" and len(array) != n:
            raise ValueError(f"{folder / (key + '.npy')}: {len(array)} rows, videoname.npy has {n}")
    classes = tuple(_decode(c) for c in arrays["classlist"])
    videos = {}
    for i, name in enumerate(names):
        segments = np.asarray(arrays["segments"][i], dtype=np.float64).reshape(-1, 2)
        labels = tuple(_decode(c) for c in arrays["labels"][i])
        if len(labels) != len(segments):
            raise ValueError(f"{folder}: video {name} has {len(segments)} segments but {len(labels)} labels")
        tags = tuple(_decode(c) for c in arrays["labels_all"][i]) if "labels_all" in arrays else None
        videos[name] = VideoAnnotation(
            subset=_decode(arrays["subset"][i]),
            segments=segments,
            labels=labels,
            duration=float(np.ravel(arrays["duration"][i])[0]),
            tags=tags,
        )
    return GroundTruth(classes, videos, str(folder))


def _seconds(value, where: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {value!r} is not a number of seconds") from None
    if not math.isfinite(out):
        raise ValueError(f"{where}: {value!r} is not a finite number of seconds")
    return out


def parse_segment(segment, where: str) -> tuple[float, float]:
    """[start, end] from numbers or numeric strings (the BaSNet json writes strings)."""
    if not isinstance(segment, (list, tuple)) or len(segment) != 2:
        raise ValueError(f"{where}: segment must be [start, end], got {segment!r}")
    start, end = _seconds(segment[0], where), _seconds(segment[1], where)
    if end < start:
        raise ValueError(f"{where}: segment ends before it starts: {segment!r}")
    return start, end


def activitynet_from_dict(doc: dict, source: str) -> GroundTruth:
    database = doc.get("database") if isinstance(doc, dict) else None
    if not isinstance(database, dict):
        raise ValueError(f"{source}: not an ActivityNet ground truth: no 'database' object")
    videos = {}
    for name, entry in database.items():
        annotations = entry.get("annotations", []) if isinstance(entry, dict) else None
        if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in annotations):
            raise ValueError(f"{source}: database[{name!r}] must be an object whose 'annotations' is a list of objects")
        segments = [parse_segment(a.get("segment"), f"{source}: {name}") for a in annotations]
        labels = tuple(str(a.get("label")) for a in annotations)
        duration = entry.get("duration")
        videos[name] = VideoAnnotation(
            subset=str(entry.get("subset", "")),
            segments=np.asarray(segments, dtype=np.float64).reshape(-1, 2),
            labels=labels,
            duration=None if duration is None else _seconds(duration, f"{source}: {name} duration"),
        )
    classes = tuple(sorted({c for v in videos.values() for c in v.labels}))
    return GroundTruth(classes, videos, source)


def load_multithumos(path: str | Path) -> GroundTruth:
    """Read super-events' multithumos.json: {video: {subset, duration, actions: [[id, s, e]]}}."""
    path = Path(path)
    doc = read_json(path)
    videos = {}
    for name, entry in doc.items():
        segments, labels = [], []
        if not isinstance(entry.get("actions"), list):
            raise ValueError(f"{path}: {name!r}: 'actions' must be a list of [class_id, start, end]")
        for row, action in enumerate(entry["actions"]):
            where = f"{path}: {name} action {row}"
            if not isinstance(action, (list, tuple)) or len(action) != 3:
                raise ValueError(f"{where}: expected [class_id, start, end], got {action!r}")
            class_id = action[0]
            if not isinstance(class_id, int) or not 1 <= class_id <= len(MULTITHUMOS_CLASSES):
                raise ValueError(f"{where}: class id {class_id!r} is not in 1..{len(MULTITHUMOS_CLASSES)}")
            segments.append(parse_segment(action[1:], where))
            labels.append(MULTITHUMOS_CLASSES[class_id - 1])
        videos[name] = VideoAnnotation(
            subset=str(entry.get("subset", "")),
            segments=np.asarray(segments, dtype=np.float64).reshape(-1, 2),
            labels=tuple(labels),
            duration=_seconds(entry["duration"], f"{path}: {name} duration") if "duration" in entry else None,
        )
    return GroundTruth(MULTITHUMOS_CLASSES, videos, str(path))


def read_json(path: Path):
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError, RecursionError) as e:  # ValueError: JSON or UTF-8 decoding; RecursionError: deep nesting
        raise ValueError(f"{path}: cannot read json: {e}") from e


@names_the_file
def load_ground_truth(path: str | Path) -> GroundTruth:
    """A W-TALC folder, an ActivityNet-layout json, or MultiThumos' json, told apart by content."""
    path = Path(path)
    if path.is_dir():
        return load_wtalc(path)
    doc = read_json(path)
    if isinstance(doc, dict) and "database" in doc:
        return activitynet_from_dict(doc, str(path))
    if isinstance(doc, dict) and doc and all(isinstance(v, dict) and "actions" in v for v in doc.values()):
        return load_multithumos(path)
    raise ValueError(f"{path}: neither an ActivityNet ground truth ('database') nor MultiThumos json ('actions')")


def activitynet_document(gt: GroundTruth) -> dict:
    database = {}
    for name, video in gt.videos.items():
        entry: dict = {
            "subset": video.subset,
            "annotations": [
                {"segment": [float(s), float(e)], "label": label}
                for (s, e), label in zip(video.segments.tolist(), video.labels)
            ],
        }
        if video.duration is not None:
            entry["duration"] = video.duration
        database[name] = entry
    return {"database": database}


@names_the_file
def load_ambiguous(path: str | Path) -> dict[str, np.ndarray]:
    """THUMOS' Ambiguous_test.txt: ``video start end`` per line -> {video: (n, 2) seconds}."""
    path = Path(path)
    out: dict[str, list[tuple[float, float]]] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise ValueError(f"{path}: cannot read: {e}") from e
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise ValueError(f"{path}:{number}: expected 'video start end', got {line!r}")
        out.setdefault(parts[0], []).append(parse_segment(parts[1:], f"{path}:{number}"))
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


@dataclass(frozen=True)
class VideoDifference:
    video: str
    only_in_first: tuple[tuple[str, float, float], ...]
    only_in_second: tuple[tuple[str, float, float], ...]


@dataclass(frozen=True)
class Comparison:
    """Where two transcriptions of the same annotations differ."""

    only_in_first: dict[str, int]  # video -> its number of segments
    only_in_second: dict[str, int]
    subset_pairs: dict[tuple[str, str], int]  # (first's subset, second's subset) -> videos
    segment_differences: tuple[VideoDifference, ...]
    segment_counts: tuple[dict[str, int], dict[str, int]]

    @property
    def identical(self) -> bool:
        one_to_one = len({a for a, _ in self.subset_pairs}) == len(self.subset_pairs) == len({b for _, b in self.subset_pairs})
        return not (self.only_in_first or self.only_in_second or self.segment_differences) and one_to_one

    def describe(self) -> list[str]:
        lines = [f"subsets (first -> second): {dict(self.subset_pairs)}",
                 f"segments per subset: {self.segment_counts[0]} vs {self.segment_counts[1]}"]
        lines += [f"only in first: {v} ({n} segments)" for v, n in sorted(self.only_in_first.items())]
        lines += [f"only in second: {v} ({n} segments)" for v, n in sorted(self.only_in_second.items())]
        for d in self.segment_differences:
            lines.append(f"{d.video}: only in first {list(d.only_in_first)}, only in second {list(d.only_in_second)}")
        return lines


def _segment_keys(video: VideoAnnotation) -> list[tuple[str, float, float]]:
    return sorted((label, float(s), float(e)) for (s, e), label in zip(video.segments.tolist(), video.labels))


def _unmatched(a: list, b: list, tolerance: float) -> tuple[list, list]:
    """Greedy one-to-one match of (label, start, end) keys with times equal within tolerance."""
    left = list(b)
    missing = []
    for key in a:
        hit = next((j for j, other in enumerate(left) if other[0] == key[0]
                    and abs(other[1] - key[1]) <= tolerance and abs(other[2] - key[2]) <= tolerance), None)
        if hit is None:
            missing.append(key)
        else:
            left.pop(hit)
    return missing, left


def compare_ground_truths(first: GroundTruth, second: GroundTruth, tolerance: float = 1e-6) -> Comparison:
    """Videos, subsets and segments (label and times within ``tolerance`` seconds) of two sources."""
    shared = sorted(set(first.videos) & set(second.videos))
    pairs: Counter[tuple[str, str]] = Counter((first.videos[v].subset, second.videos[v].subset) for v in shared)
    differences = []
    for name in shared:
        a, b = _segment_keys(first.videos[name]), _segment_keys(second.videos[name])
        missing, extra = _unmatched(a, b, tolerance)
        if missing or extra:
            differences.append(VideoDifference(name, tuple(missing), tuple(extra)))
    return Comparison(
        only_in_first={v: len(first.videos[v].labels) for v in sorted(set(first.videos) - set(second.videos))},
        only_in_second={v: len(second.videos[v].labels) for v in sorted(set(second.videos) - set(first.videos))},
        subset_pairs=dict(pairs),
        segment_differences=tuple(differences),
        segment_counts=(first.segment_counts(), second.segment_counts()),
    )
