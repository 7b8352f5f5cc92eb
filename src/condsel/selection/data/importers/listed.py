"""Scores in list order: a score file without names plus the list file whose row i names sample i.

This is how TSN, SeqVLAD and mmaction2 ship test results: ``tools/test.py
--out results.pkl`` writes one score array per line of the test list, and
the list (``<path> <num_frames> <label>`` or ``<path> <label>``) is the only
record of which video each row is. Score files accepted here:

- mmaction2 0.x ``--out results.pkl``: a list of per-sample score arrays (or
  one (N, C) array), and MMAction2 1.x ``--dump results.pkl``: a list of dicts
  of tensors (see :mod:`.mmaction`); unpickled by :func:`condsel._io.load_pickle`,
  which admits numpy arrays, plain tensors and plain containers only;
- SeqVLAD / TSN ``.npz``: an object array ``scores`` of [score array, label]
  rows and ``labels``, written by Python 2 (read with latin-1 strings);
- ``.npz`` with a numeric ``logits`` or ``scores`` (N, C) array, optional ``labels``;
- ``.npy``: an (N, C) array.

Labels come from the list. When the score file stores labels too, they must
agree with the list's, in line order or (SeqVLAD's files) in the order of the
list sorted by path.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from condsel._io import load_npy, load_npz, load_pickle
from condsel.datasets.manifests import read_path_label_list
from condsel.errors import names_the_file
from condsel.selection.data.importers.mmaction import TensorUnpickler, dump_scores
from condsel.selection.data.importers.named import check_row_labels
from condsel.selection.data.importers.records import ModelScores, checked, reading, stack_rows

log = logging.getLogger(__name__)


@names_the_file
def read_sample_list(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Sample names and labels of a TSN / mmaction2 list, in file order.

    The frame-count column is detected from the first line: three fields whose
    last two are integers mean ``<path> <num_frames> <label>``.
    """
    path = Path(path)
    try:
        first = next((line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()), None)
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read list file: {e}") from e
    if first is None:
        raise ValueError(f"{path}: empty list file")
    frames = len(first) == 3 and first[1].isdigit() and first[2].isdigit()
    entries = read_path_label_list(path, frames_column=frames)
    return np.asarray([e.name for e in entries]), np.asarray([e.label for e in entries], dtype=np.int64)


@names_the_file
def read_listed_scores(scores_path: str | Path, list_path: str | Path) -> ModelScores:
    """One model's scores whose row i is line i of ``list_path``.

    Parameters
    ----------
    scores_path
        mmaction2 ``results.pkl``, a SeqVLAD/TSN ``.npz``, or an ``.npy``/``.npz``
        (N, C) array.
    list_path
        The test list the scores were computed on, in the same order.

    Returns
    -------
    ModelScores
        Names and labels from the list, scores from the file; class names from
        the list's class folders when every class appears.

    Examples
    --------
    >>> scores = read_listed_scores("ucf101_flow_split1.npz", "flow_test_split1.txt")  # doctest: +SKIP
    >>> scores.logits.shape  # doctest: +SKIP
    (3783, 101)
    """
    scores_path, list_path = Path(scores_path), Path(list_path)
    names, labels = read_sample_list(list_path)
    with reading(scores_path):
        logits, stored_labels = _nameless_scores(scores_path)
    if len(logits) != len(names):
        relation = "shorter" if len(names) < len(logits) else "longer"
        raise ValueError(
            f"{list_path} has {len(names)} samples but {scores_path} has {len(logits)} score rows "
            f"(the list is {relation} than the score file); row i of the scores must be line i of the list"
        )
    if stored_labels is not None and not np.array_equal(stored_labels, labels):
        order = _sorted_list_order(scores_path, list_path, names, stored_labels, labels)
        names, labels = names[order], labels[order]
    dup, counts = np.unique(names, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{list_path}: duplicate sample name {dup[counts > 1][0]}")
    return checked(scores_path, names, labels, logits)


def _sorted_list_order(scores_path: Path, list_path: Path, names, stored: np.ndarray, listed: np.ndarray) -> np.ndarray:
    """Row order of a score file that follows the list sorted by path rather than its line order.

    SeqVLAD's published UCF101 scores do this: the lists are sorted
    case-insensitively (``Hammering`` before ``HammerThrow``), the scores in
    Python's case-sensitive order, so 4 classes' rows sit in another place.
    The labels stored beside the scores are the evidence: they must match the
    sorted list exactly, else the list is not the one the scores follow.
    """
    order = np.asarray(sorted(range(len(names)), key=lambda i: str(names[i])))
    if np.array_equal(stored, listed[order]):
        moved = int((order != np.arange(len(order))).sum())
        log.warning(
            "%s: rows follow %s sorted by path, not its line order (%d rows differ); "
            "matched by the labels stored in the score file", scores_path, list_path, moved,
        )
        return order
    bad = np.flatnonzero(stored != listed)
    i = int(bad[0])
    raise ValueError(
        f"{scores_path} row {i} has label {stored[i]} but {list_path} line {i + 1} ({names[i]}) has {listed[i]} "
        f"({bad.size} rows disagree, in line order and in sorted order): is this the list the scores were computed on?"
    )


def _nameless_scores(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, C) scores and, when the file stores them, the labels."""
    suffix = path.suffix.lower()
    if suffix in (".pkl", ".pickle"):
        return _from_pickle(path, load_pickle(path, encoding="latin1", unpickler=TensorUnpickler))
    if suffix == ".npy":
        return _numeric(path, load_npy(path, encoding="latin1")), None
    if suffix != ".npz":
        raise ValueError(f"{path}: unknown score file type {suffix!r}; expected .pkl, .npz or .npy")
    data = load_npz(path, encoding="latin1")
    labels = np.asarray(data["labels"]).astype(np.int64) if "labels" in data else None
    key = "logits" if "logits" in data else "scores" if "scores" in data else None
    if key is None:
        raise ValueError(f"{path}: expected a 'scores' or 'logits' array, found {sorted(data)}")
    array = data[key]
    if array.dtype == object and array.ndim == 2 and array.shape[1] >= 2:
        if labels is not None:
            check_row_labels(path, array, labels, [f"row {i}" for i in range(len(array))])
        return stack_rows(path, array[:, 0]), labels
    return _numeric(path, array), labels


def _from_pickle(path: Path, payload) -> tuple[np.ndarray, np.ndarray | None]:
    """mmaction2 0.x ``--out`` (score arrays) or 1.x ``--dump`` (dicts with labels) -> scores and stored labels."""
    if isinstance(payload, np.ndarray):
        return _numeric(path, payload), None
    if not isinstance(payload, (list, tuple)) or not payload:
        raise ValueError(f"{path}: expected a list of per-sample score arrays, got {type(payload).__name__}")
    if isinstance(payload[0], dict):
        rows, labels = dump_scores(path, payload)
        return stack_rows(path, rows), labels
    for i, row in enumerate(payload):
        if not isinstance(row, (np.ndarray, list, tuple)):
            raise ValueError(f"{path}: item {i} is a {type(row).__name__}, not a score array")
    return stack_rows(path, payload), None


def _numeric(path: Path, array: np.ndarray) -> np.ndarray:
    if array.dtype == object:
        return stack_rows(path, array)
    if array.ndim < 2:
        raise ValueError(f"{path}: scores have shape {array.shape}, expected (N, C)")
    return np.asarray(array, dtype=np.float32).reshape(len(array), -1)  # e.g. (N, 1, C) from per-clip averaging
