"""Dataset manifests in the formats users already have, read into one entry type.

- Kinetics-400 / Mini-Kinetics CSV (``label,youtube_id,time_start,time_end,split``
  and optional extra columns such as ``is_cc``); files named as the ActivityNet
  Kinetics downloader writes them, ``<root>/<label>/<id>_<start:06d>_<end:06d>.mp4``
  (or flat under ``<root>``).
- PySlowFast / MMAction2 lists: one ``<path> <label>`` per line, space-separated
  (TSN / rawframe lists: ``<path> <num_frames> <label>``).
- HVU CSV (``Tags,youtube_id,time_start,time_end``, tags joined by ``|``), files
  named as MMAction2's HVU downloader writes them (times x 10), labels as a
  multi-hot vector over the HVU vocabulary.

Every reader validates the whole file first and raises ``ValueError`` naming
the file and row of the first problem, so a long run never starts on a bad
manifest.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")
HVU_COLUMNS = ("Tags", "youtube_id", "time_start", "time_end")


@dataclass(frozen=True)
class ManifestEntry:
    """One video: a unique ``name`` (path relative to the root), its file and its label.

    ``label`` is a class index, or for multi-label datasets a multi-hot
    float32 vector over the vocabulary.
    """

    name: str
    path: Path
    label: int | np.ndarray


def read_class_names(path: str | Path) -> list[str]:
    """Class names, one a line, in index order (e.g. ``kinetics400.txt``)."""
    path = Path(path)
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(f"{path}: duplicate class names {duplicates[:5]}")
    return names


def read_hvu_vocabulary(path: str | Path) -> tuple[list[str], dict[str, slice]]:
    """HVU tags from a ``{category: [tag, ...]}`` JSON file (MMAction2's ``hvu.json``).

    Returns the tags in file order (categories as listed, tags within each) —
    the index order of the multi-hot labels — and each category's slice of it,
    for HVU's per-category mAP.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read HVU vocabulary: {e}") from e
    if not isinstance(doc, dict) or not all(isinstance(v, list) for v in doc.values()):
        raise ValueError(f"{path}: expected a JSON object of category -> list of tags")
    tags: list[str] = []
    categories: dict[str, slice] = {}
    for category, members in doc.items():
        categories[category] = slice(len(tags), len(tags) + len(members))
        tags.extend(members)
    if len(set(tags)) != len(tags):
        raise ValueError(f"{path}: a tag appears in more than one place")
    return tags, categories


def _read_csv(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a headed CSV as (line number, row), after checking the header."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(f"{path}: header {header} lacks column(s) {missing}; expected {list(required)}")
        return [(reader.line_num, row) for row in reader]


def _seconds(path: Path, line: int, row: dict[str, str]) -> tuple[float, float]:
    try:
        start, end = float(row["time_start"]), float(row["time_end"])
    except (TypeError, ValueError):
        raise ValueError(f"{path}:{line}: time_start/time_end must be numbers, got {row}") from None
    if not 0 <= start < end:
        raise ValueError(f"{path}:{line}: need 0 <= time_start < time_end, got {start}, {end}")
    return start, end


def read_kinetics_csv(
    csv_path: str | Path,
    video_root: str | Path,
    class_names_path: str | Path,
    split: str | None = None,
    class_subdirs: bool = True,
) -> list[ManifestEntry]:
    """Entries of a Kinetics-style CSV, optionally only those of ``split``.

    ``class_subdirs`` follows the ActivityNet downloader's ``<root>/<label>/``
    layout; set it False for a flat directory of clips.
    """
    csv_path, root = Path(csv_path), Path(video_root)
    index = {name: i for i, name in enumerate(read_class_names(class_names_path))}
    entries = []
    for line, row in _read_csv(csv_path, KINETICS_COLUMNS):
        label = row["label"]
        if label not in index:
            raise ValueError(f"{csv_path}:{line}: label {label!r} is not in {class_names_path}")
        start, end = _seconds(csv_path, line, row)
        if split is not None and row["split"] != split:
            continue
        # '%06d' of the seconds, as the downloader names its files
        filename = f"{row['youtube_id']}_{int(start):06d}_{int(end):06d}.mp4"
        relative = Path(label, filename) if class_subdirs else Path(filename)
        entries.append(ManifestEntry(relative.as_posix(), root / relative, index[label]))
    return entries


def read_path_label_list(
    list_path: str | Path, video_root: str | Path = "", num_classes: int | None = None, frames_column: bool = False
) -> list[ManifestEntry]:
    """Entries of a ``<path> <label>`` list; paths are relative to ``video_root``.

    The label is the last space-separated field, so paths may contain spaces.
    ``frames_column`` reads TSN / mmaction2 rawframe lists,
    ``<path> <num_frames> <label>``, whose frame count is checked and dropped.
    """
    list_path, root = Path(list_path), Path(video_root)
    fields = 3 if frames_column else 2
    expected = "'<path> <num_frames> <label>'" if frames_column else "'<path> <label>'"
    entries = []
    for line, text in enumerate(list_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        parts = text.strip().rsplit(" ", fields - 1)
        if len(parts) != fields or not all(p.isdigit() for p in parts[1:]):
            raise ValueError(f"{list_path}:{line}: expected {expected} with integer fields, got {text!r}")
        label = int(parts[-1])
        if num_classes is not None and label >= num_classes:
            raise ValueError(f"{list_path}:{line}: label {label} out of range for {num_classes} classes")
        entries.append(ManifestEntry(parts[0], root / parts[0], label))
    return entries


def read_hvu_csv(csv_path: str | Path, video_root: str | Path, vocabulary_path: str | Path) -> list[ManifestEntry]:
    """Entries of an HVU CSV with multi-hot labels over the vocabulary's tags."""
    csv_path, root = Path(csv_path), Path(video_root)
    tags, _ = read_hvu_vocabulary(vocabulary_path)
    index = {tag: i for i, tag in enumerate(tags)}
    entries = []
    for line, row in _read_csv(csv_path, HVU_COLUMNS):
        row_tags = [t for t in (row["Tags"] or "").split("|") if t]
        if not row_tags:
            raise ValueError(f"{csv_path}:{line}: no tags")
        unknown = [t for t in row_tags if t not in index]
        if unknown:
            raise ValueError(f"{csv_path}:{line}: tag(s) {unknown} not in {vocabulary_path}")
        start, end = _seconds(csv_path, line, row)
        label = np.zeros(len(tags), dtype=np.float32)
        label[[index[t] for t in row_tags]] = 1.0
        # MMAction2's HVU downloader: times in tenths of a second, '%06d'
        filename = f"{row['youtube_id']}_{int(start * 10):06d}_{int(end * 10):06d}.mp4"
        entries.append(ManifestEntry(filename, root / filename, label))
    return entries
