"""The manifest entry type and the dataset-agnostic readers: class lists and path-label lists.

- class lists: one name a line, in index order (``kinetics400.txt``);
- PySlowFast / MMAction2 lists: one ``<path> <label>`` per line, space-separated
  (TSN / rawframe lists: ``<path> <num_frames> <label>``).

Dataset CSVs live beside this module: :mod:`condsel.datasets.kinetics`,
:mod:`condsel.datasets.hvu`.

Every reader validates the whole file first and raises ``ValueError`` naming
the file and row of the first problem, so a long run never starts on a bad
manifest.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from condsel.errors import names_the_file


@dataclass(frozen=True)
class ManifestEntry:
    """One video: a unique ``name`` (path relative to the root), its file and its label.

    ``label`` is a class index, or for multi-label datasets a multi-hot
    float32 vector over the vocabulary.
    """

    name: str
    path: Path
    label: int | np.ndarray


@names_the_file
def read_class_names(path: str | Path) -> list[str]:
    """Class names, one a line, in index order (e.g. ``kinetics400.txt``)."""
    path = Path(path)
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(f"{path}: duplicate class names {duplicates[:5]}")
    return names


def read_csv_rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a headed CSV as (line number, row), after checking the header (Kinetics, HVU)."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(f"{path}: header {header} lacks column(s) {missing}; expected {list(required)}")
        return [(reader.line_num, row) for row in reader]


def clip_seconds(path: Path, line: int, row: dict[str, str]) -> tuple[float, float]:
    """A row's ``time_start``, ``time_end`` in seconds, checked: YouTube-clip CSVs name files by them."""
    try:
        start, end = float(row["time_start"]), float(row["time_end"])
    except (TypeError, ValueError):
        raise ValueError(f"{path}:{line}: time_start/time_end must be numbers, got {row}") from None
    if not 0 <= start < end:
        raise ValueError(f"{path}:{line}: need 0 <= time_start < time_end, got {start}, {end}")
    return start, end


@names_the_file
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
