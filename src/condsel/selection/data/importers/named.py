"""Score files that name their samples: DMC-Net npz, plain npz, CSV, IDT ``.mat``."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from condsel._io import load_npz
from condsel.selection.data.importers.join import class_key
from condsel.selection.data.importers.records import ModelScores, checked, classes_by_label, stack_rows

# The ltc IDT files name their videos as UCF101 does, ``v_<Class>_gXX_cYY``: the
# file's only record of class names. ``condsel.datasets.ucf101`` groups by the same names.
VIDEO_NAME = re.compile(r"v_(?P<cls>.+)_g(?P<group>\d+)_c\d+")


def video_name_parts(name) -> re.Match | None:
    """The ``cls`` and ``group`` of a ``v_<Class>_gXX_cYY`` name (folder and suffix ignored), else None."""
    return VIDEO_NAME.search(Path(str(name)).stem)


def video_classes(names: np.ndarray) -> list[str] | None:
    """The class part of each ``v_<Class>_gXX_cYY`` name; None unless every name follows the pattern."""
    matches = [video_name_parts(n) for n in names]
    return None if any(m is None for m in matches) else [m["cls"] for m in matches]


def read_dmcnet(path: Path, data: dict[str, np.ndarray]) -> ModelScores:
    """DMC-Net / CoViAR ``*_score_model_best.npz``: names, labels, and (N, 2|3) object ``scores``."""
    scores = _score_rows(path, data)
    labels = np.asarray(data["labels"])
    check_row_labels(path, scores, labels, data["names"])
    return checked(path, data["names"], labels, stack_rows(path, scores[:, 0]), None)


def _score_rows(path: Path, data: dict[str, np.ndarray]) -> np.ndarray:
    scores = data["scores"]
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"{path}: 'scores' has shape {scores.shape}, expected (N, 2) or (N, 3) rows of [scores, label, ...]")
    return scores


def check_row_labels(path: Path, scores: np.ndarray, labels: np.ndarray, names) -> None:
    """Row[1] of each score row repeats the label; a mismatch means a mangled file."""
    row_labels = np.asarray([int(np.asarray(row[1]).reshape(-1)[0]) for row in scores])
    if labels.shape != row_labels.shape:
        raise ValueError(f"{path}: {len(row_labels)} score rows but {len(labels)} labels")
    bad = np.flatnonzero(row_labels != labels)
    if bad.size:
        i = bad[0]
        raise ValueError(f"{path}: row {i} ({names[i]}): label in 'scores' ({row_labels[i]}) != 'labels' ({labels[i]})")


def read_plain_npz(path: Path, data: dict[str, np.ndarray]) -> ModelScores:
    """Pickle-free npz: ``names``, ``labels`` (N,) or (N, C), ``logits`` (N, C), optional ``features`` and ``classes``.

    ``classes`` (C,) names the score columns, so a file whose columns are in
    another order than its partners' joins by class name.
    """
    return checked(path, data["names"], data["labels"], data["logits"], data.get("features"),
                   class_names=_column_names(path, data))


def _column_names(path: Path, data: dict[str, np.ndarray]) -> list[str] | None:
    if "classes" not in data:
        return None
    classes, logits = np.asarray(data["classes"]), np.asarray(data["logits"])
    if logits.ndim != 2:
        return None  # ``checked`` refuses the scores themselves
    if classes.shape != (logits.shape[1],):
        raise ValueError(f"{path}: 'classes' has shape {classes.shape}, expected ({logits.shape[1]},): one name per score column")
    names = [(c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c)).strip() for c in classes.tolist()]
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"{path}: 'classes' must hold {len(names)} distinct, non-empty class names")
    return names


def read_csv(path: Path) -> ModelScores:
    """Header ``name,label,<class columns>``; ``|``-separated labels make the file multi-label.

    Spreadsheets write what a user calls the same header many ways: a UTF-8
    BOM ("CSV UTF-8"), ``Name,Label``, ``name, label``; all are read alike.
    A label is a class index or the name of one of the header's class columns.
    """
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    header = [cell.strip() for cell in rows[0]] if rows else []
    if [cell.lower() for cell in header[:2]] != ["name", "label"] or len(header) < 3:
        read = _shortened(",".join(rows[0])) if rows else "an empty file"
        raise ValueError(f"{path}: header must be 'name,label,<class score columns...>', read {read!r}")
    classes = header[2:]
    width = len(classes)
    to_index = _label_parser(classes)
    names, labels, logits = [], [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != width + 2:
            raise ValueError(f"{path}: row {line} has {len(row)} fields, expected {width + 2}")
        try:
            ids = [to_index(x) for x in row[1].split("|")] if row[1].strip() else []
            logits.append([float(x) for x in row[2:]])
        except ValueError as e:
            raise ValueError(f"{path}: row {line}: {e}") from e
        names.append(row[0].strip())
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
    return checked(path, np.asarray(names), label_array, np.asarray(logits, dtype=np.float32), None,
                   class_names=classes if _named_columns(classes) else None)


def _shortened(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _label_parser(classes: list[str]):
    """``label`` text -> class index: an integer is an index, anything else the name of a class column.

    Names compare as the join compares them (case, spaces, punctuation
    ignored) when that keeps the columns apart, else exactly.
    """
    keyed = [class_key(c) for c in classes]
    key = class_key if len(set(keyed)) == len(keyed) else str
    by_name = {key(c): i for i, c in enumerate(classes)}

    def to_index(text: str) -> int:
        text = text.strip()
        try:
            return int(text)
        except ValueError:
            pass
        if key(text) in by_name:
            return by_name[key(text)]
        raise ValueError(
            f"label {text!r} is neither a class index (0 to {len(classes) - 1}) nor a class column of the header "
            f"({_shortened(', '.join(classes), 60)})"
        )

    return to_index


def _named_columns(columns: list[str]) -> bool:
    """Column headers are class names unless they are placeholders such as c0, c1 or 0, 1."""
    return len(set(columns)) == len(columns) and not all(c.lstrip("c").isdigit() for c in columns)


def read_dense_trajectories(path: Path) -> ModelScores:
    """MATLAB file with ``scores_<m>`` (N, C), ``vn_<m>`` (N, 1) names and ``gt_<m>`` (N, 1) 1-based labels.

    The layout of gulvarol/ltc's IDT + Fisher-vector scores (``<m>`` = ``idt``).
    Class names come from the ``v_<Class>_gXX_cYY`` video names when they
    follow that pattern.
    """
    from scipy.io import loadmat  # scipy is only needed for this layout
    from scipy.io.matlab import MatReadError

    try:
        loaded = loadmat(path)
    except (MatReadError, NotImplementedError) as e:  # NotImplementedError: a v7.3 (HDF5) file
        raise ValueError(f"{path}: not a readable MATLAB file: {e}") from e
    mat = {k: v for k, v in loaded.items() if not k.startswith("__")}
    methods = {k[len("scores_"):] for k in mat if k.startswith("scores_")}
    if len(methods) != 1:
        raise ValueError(f"{path}: expected exactly one scores_<method> array, found keys {sorted(mat)}")
    method = methods.pop()
    missing = [k for k in (f"vn_{method}", f"gt_{method}") if k not in mat]
    if missing:
        raise ValueError(f"{path}: missing {missing} beside scores_{method}")
    names = np.asarray([_matlab_string(v) for v in np.asarray(mat[f"vn_{method}"]).reshape(-1)])
    labels = np.asarray(mat[f"gt_{method}"]).reshape(-1).astype(np.int64)
    if labels.size and labels.min() < 1:
        raise ValueError(f"{path}: gt_{method} must hold 1-based class labels, found {labels.min()}")
    labels = labels - 1
    logits = np.asarray(mat[f"scores_{method}"], dtype=np.float32)
    return checked(path, names, labels, logits, None, class_names=classes_by_label(video_classes(names), labels))


def _matlab_string(value) -> str:
    """A MATLAB cell entry: a char array wrapped in one or more object arrays."""
    while isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"expected one string per cell, got an array of shape {value.shape}")
        value = value.reshape(-1)[0]
    return str(value)


def read_npz_with_names(path: Path) -> ModelScores:
    """npz files that carry ``names``: the DMC-Net layout or the plain one."""
    data = load_npz(path, encoding="latin1")
    if "names" not in data:
        raise ValueError(f"{path}: holds no sample names (keys {sorted(data)}); give the list file it follows as SCORES:LIST")
    if "scores" in data:
        return read_dmcnet(path, data)
    if {"names", "labels", "logits"} <= set(data):
        return read_plain_npz(path, data)
    raise ValueError(f"{path}: unrecognised layout (keys {sorted(data)}); expected names/labels/logits or DMC-Net scores")
