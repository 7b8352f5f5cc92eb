"""HVU (Holistic Video Understanding) manifests: multi-label tags over a categorised vocabulary.

CSV rows ``Tags,youtube_id,time_start,time_end`` with tags joined by ``|``;
files named as MMAction2's HVU downloader writes them (times x 10); labels
are multi-hot vectors over the vocabulary of MMAction2's ``hvu.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from condsel.datasets.manifests import ManifestEntry, clip_seconds, read_csv_rows

HVU_COLUMNS = ("Tags", "youtube_id", "time_start", "time_end")


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


def read_hvu_csv(csv_path: str | Path, video_root: str | Path, vocabulary_path: str | Path) -> list[ManifestEntry]:
    """Entries of an HVU CSV with multi-hot labels over the vocabulary's tags."""
    csv_path, root = Path(csv_path), Path(video_root)
    tags, _ = read_hvu_vocabulary(vocabulary_path)
    index = {tag: i for i, tag in enumerate(tags)}
    entries = []
    for line, row in read_csv_rows(csv_path, HVU_COLUMNS):
        row_tags = [t for t in (row["Tags"] or "").split("|") if t]
        if not row_tags:
            raise ValueError(f"{csv_path}:{line}: no tags")
        unknown = [t for t in row_tags if t not in index]
        if unknown:
            raise ValueError(f"{csv_path}:{line}: tag(s) {unknown} not in {vocabulary_path}")
        start, end = clip_seconds(csv_path, line, row)
        label = np.zeros(len(tags), dtype=np.float32)
        label[[index[t] for t in row_tags]] = 1.0
        # MMAction2's HVU downloader: times in tenths of a second, '%06d'
        filename = f"{row['youtube_id']}_{int(start * 10):06d}_{int(end * 10):06d}.mp4"
        entries.append(ManifestEntry(filename, root / filename, label))
    return entries
