"""Write the synthetic benchmark to disk: mp4 files, manifests and the class list.

Layout of ``DIR`` (paths in manifests are relative to ``DIR``):
- ``videos/vid_00000.mp4`` ...: H.264 clips, 16 frames of 64x48 at 8 fps;
- ``manifest.csv``: every video, columns ``path,label``, label = class name;
- ``train.csv``, ``val.csv``, ``test.csv``: the same columns, a stratified
  50/25/25 split (train fits the pool, val fits the selector, test reports);
- ``classes.txt``: the class names, one a line, in class-index order.
Video ``i`` is drawn from ``numpy.random.default_rng([seed, i])``, so a set is
reproducible from its seed and any video can be regenerated alone.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from condsel._progress import progress_bar

from condsel._io import atomic_path
from condsel.synthetic.render import CLASS_NAMES, FPS, render_clip
from condsel.video.encode import write_video

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.5, 0.25, 0.25)


@dataclass(frozen=True)
class SyntheticSet:
    root: Path
    paths: list[Path]  # absolute
    labels: np.ndarray  # (N,) class index into CLASS_NAMES
    splits: np.ndarray  # (N,) one of SPLITS

    def split(self, name: str) -> tuple[list[Path], np.ndarray]:
        keep = np.flatnonzero(self.splits == name)
        return [self.paths[i] for i in keep], self.labels[keep]


def assign_labels_and_splits(num_videos: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Balanced labels in shuffled order, and a per-class stratified split."""
    rng = np.random.default_rng([seed, 2**31])  # a stream no video uses
    labels = rng.permutation(np.arange(num_videos) % len(CLASS_NAMES))
    splits = np.empty(num_videos, dtype=object)
    for c in range(len(CLASS_NAMES)):
        members = np.flatnonzero(labels == c)
        cuts = np.round(np.cumsum(SPLIT_FRACTIONS)[:-1] * len(members)).astype(int)
        for name, part in zip(SPLITS, np.split(members, cuts)):
            splits[part] = name
    return labels, splits.astype(str)


def generate(out_dir: str | Path, num_videos: int, seed: int = 0, progress: bool = False) -> SyntheticSet:
    """Render and encode ``num_videos`` clips into ``out_dir`` and write the manifests."""
    if num_videos < 1:
        raise ValueError(f"the number of videos must be positive, got {num_videos}")
    root = Path(out_dir)
    labels, splits = assign_labels_and_splits(num_videos, seed)
    relpaths = [f"videos/vid_{i:05d}.mp4" for i in range(num_videos)]
    for i in progress_bar(range(num_videos), desc="synthetic videos", unit="video", disable=not progress):
        frames = render_clip(CLASS_NAMES[labels[i]], np.random.default_rng([seed, i]))
        write_video(root / relpaths[i], frames, fps=FPS)
    rows = [(p, CLASS_NAMES[y]) for p, y in zip(relpaths, labels)]
    _write_text(root / "manifest.csv", _csv(rows))
    for name in SPLITS:
        _write_text(root / f"{name}.csv", _csv([r for r, s in zip(rows, splits) if s == name]))
    _write_text(root / "classes.txt", "".join(f"{c}\n" for c in CLASS_NAMES))
    return SyntheticSet(root, [root / p for p in relpaths], labels, splits)


def _csv(rows: list[tuple[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "label"])
    writer.writerows(rows)
    return buf.getvalue()


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
