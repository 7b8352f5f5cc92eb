"""Kinetics-400 / Mini-Kinetics manifests.

CSV rows ``label,youtube_id,time_start,time_end,split`` (optional extra columns
such as ``is_cc``); files named as the ActivityNet Kinetics downloader writes
them, ``<root>/<label>/<id>_<start:06d>_<end:06d>.mp4`` (or flat under ``<root>``).
The whole file is validated first; errors name the file and row.
"""

from __future__ import annotations

from pathlib import Path

from condsel.datasets.manifests import ManifestEntry, clip_seconds, read_class_names, read_csv_rows

KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")


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
    for line, row in read_csv_rows(csv_path, KINETICS_COLUMNS):
        label = row["label"]
        if label not in index:
            raise ValueError(f"{csv_path}:{line}: label {label!r} is not in {class_names_path}")
        start, end = clip_seconds(csv_path, line, row)
        if split is not None and row["split"] != split:
            continue
        # '%06d' of the seconds, as the downloader names its files
        filename = f"{row['youtube_id']}_{int(start):06d}_{int(end):06d}.mp4"
        relative = Path(label, filename) if class_subdirs else Path(filename)
        entries.append(ManifestEntry(relative.as_posix(), root / relative, index[label]))
    return entries
