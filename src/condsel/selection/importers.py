"""Build a :class:`PredictionTable` from per-model score files.

Each file holds one model's outputs on a set of named samples. Files are
joined by sample name, never by row order, and every disagreement (sample sets,
class counts, labels) is an error that names the files involved.

Accepted layouts, chosen by content:
- DMC-Net / CoViAR published scores (``*_score_model_best.npz``): ``names``,
  ``labels`` and a pickled ``scores`` object array whose row[0] is a (1, C)
  score array and row[1] the label. Read with :mod:`condsel._io`.
- plain npz: ``names`` (N,), ``labels`` (N,) or (N, C), ``logits`` (N, C),
  optionally ``features`` (N, D). No pickles.
- CSV: header ``name,label,<one column per class>``; ``label`` is a class
  index, or ``|``-separated indices for multi-label data.
"""

from __future__ import annotations

import csv
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from condsel._io import load_npz
from condsel.selection.table import PredictionTable


@dataclass
class ModelScores:
    names: np.ndarray
    labels: np.ndarray
    logits: np.ndarray
    features: np.ndarray | None
    source: Path


def read_scores(path: str | Path) -> ModelScores:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not an .npz archive (truncated, or another kind of file); expected .npz or .csv")
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
            plain = {k: data[k] for k in ("names", "labels", "logits", "features") if k in keys} if "scores" not in keys else {}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(f"{path}: cannot read the .npz archive: {e}") from e
    if "scores" in keys:
        return _read_dmcnet(path)
    if {"names", "labels", "logits"} <= keys:
        return _checked(path, plain["names"], plain["labels"], plain["logits"], plain.get("features"))
    raise ValueError(f"{path}: unrecognised layout (keys {sorted(keys)}); expected names/labels/logits or DMC-Net scores")


def _read_dmcnet(path: Path) -> ModelScores:
    data = load_npz(path)
    scores = data["scores"]
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"{path}: 'scores' has shape {scores.shape}, expected (N, 2) or (N, 3)")
    try:
        logits = np.stack([np.asarray(row[0], dtype=np.float32).reshape(-1) for row in scores])
    except ValueError as e:
        raise ValueError(f"{path}: per-video score arrays differ in size: {e}") from e
    labels = np.asarray(data["labels"])
    row_labels = np.asarray([int(np.asarray(row[1]).reshape(-1)[0]) for row in scores])
    bad = np.flatnonzero(row_labels != labels)
    if bad.size:
        i = bad[0]
        raise ValueError(f"{path}: row {i} ({data['names'][i]}): label in 'scores' ({row_labels[i]}) != 'labels' ({labels[i]})")
    return _checked(path, data["names"], labels, logits, None)


def _read_csv(path: Path) -> ModelScores:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][:2] != ["name", "label"] or len(rows[0]) < 3:
        raise ValueError(f"{path}: header must be 'name,label,<class score columns...>'")
    width = len(rows[0]) - 2
    names, labels, logits = [], [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != width + 2:
            raise ValueError(f"{path}: row {line} has {len(row)} fields, expected {width + 2}")
        try:
            ids = [int(x) for x in row[1].split("|")] if row[1] else []
            logits.append([float(x) for x in row[2:]])
        except ValueError as e:
            raise ValueError(f"{path}: row {line}: {e}") from e
        names.append(row[0])
        labels.append(ids)
    multilabel = any(len(ids) != 1 for ids in labels) or any("|" in r[1] for r in rows[1:])
    if multilabel:
        hot = np.zeros((len(labels), width), dtype=np.int64)
        for i, ids in enumerate(labels):
            if any(not 0 <= j < width for j in ids):
                raise ValueError(f"{path}: row {i + 2}: label ids {ids} outside [0, {width})")
            hot[i, ids] = 1
        label_array = hot
    else:
        label_array = np.asarray([ids[0] for ids in labels])
    return _checked(path, np.asarray(names), label_array, np.asarray(logits, dtype=np.float32), None)


def _checked(path: Path, names, labels, logits, features) -> ModelScores:
    names = np.asarray(names).astype(str)
    logits = np.asarray(logits, dtype=np.float32)
    labels = np.asarray(labels)
    if logits.ndim != 2 or logits.shape[0] != len(names) or labels.shape[0] != len(names):
        raise ValueError(f"{path}: names {names.shape}, labels {labels.shape} and logits {logits.shape} disagree")
    finite = np.isfinite(logits).all(axis=1)
    if not finite.all():
        raise ValueError(f"{path}: NaN/inf scores for {int((~finite).sum())} samples, e.g. {names[~finite][0]}")
    unique, counts = np.unique(names, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{path}: duplicate sample name {unique[counts > 1][0]}")
    return ModelScores(names, labels, logits, None if features is None else np.asarray(features), path)


def join_scores(per_model: dict[str, ModelScores]) -> PredictionTable:
    """Join models by sample name; the first model's row order is kept."""
    if not per_model:
        raise ValueError("no score files given")
    (first_name, first), *rest = per_model.items()
    for name, other in rest:
        missing = np.setdiff1d(first.names, other.names)
        extra = np.setdiff1d(other.names, first.names)
        if missing.size or extra.size:
            raise ValueError(
                f"{other.source} ({name}) and {first.source} ({first_name}) hold different samples: "
                f"{missing.size} only in {first_name} (e.g. {list(missing[:2])}), "
                f"{extra.size} only in {name} (e.g. {list(extra[:2])})"
            )
        if other.logits.shape[1] != first.logits.shape[1]:
            raise ValueError(
                f"{other.source} ({name}) has {other.logits.shape[1]} classes, "
                f"{first.source} ({first_name}) has {first.logits.shape[1]}"
            )
    logits, features = {}, {}
    for name, scores in per_model.items():
        order = _align(first.names, scores.names)
        if not np.array_equal(scores.labels[order], first.labels):
            i = int(np.flatnonzero(np.any((scores.labels[order] != first.labels).reshape(len(order), -1), axis=1))[0])
            raise ValueError(
                f"label of {first.names[i]} disagrees: {first.labels[i]} in {first.source}, "
                f"{scores.labels[order][i]} in {scores.source}"
            )
        logits[name] = scores.logits[order]
        if scores.features is not None:
            features[name] = scores.features[order]
    return PredictionTable(first.names, first.labels, logits, features=features, groups=ucf101_groups(first.names))


def _align(reference: np.ndarray, names: np.ndarray) -> np.ndarray:
    """Index into ``names`` that puts it in ``reference`` order."""
    order = np.argsort(names)
    return order[np.searchsorted(names, reference, sorter=order)]


_UCF_GROUP = re.compile(r"v_(?P<cls>.+)_g(?P<group>\d+)_c\d+")


def ucf101_groups(names: np.ndarray) -> np.ndarray | None:
    """UCF101 clips of one group are cut from one long video; keep them in one fold.

    Returns None unless every name follows UCF101's ``v_<Class>_gXX_cYY`` pattern.
    """
    groups = []
    for name in names:
        match = _UCF_GROUP.search(Path(str(name)).stem)
        if match is None:
            return None
        groups.append(f"{match['cls']}_g{match['group']}")
    return np.asarray(groups)
