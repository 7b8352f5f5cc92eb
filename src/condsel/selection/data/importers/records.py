"""One model's scores as read from its file, checked once, whatever the layout."""

from __future__ import annotations

import logging
import pickle
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from condsel.selection.data.table import PredictionTable

log = logging.getLogger(__name__)

# softmax rows saved at half precision, or as text rounded to 4 decimals, still sum to 1 within this
SUM_TOLERANCE = 1e-2


@dataclass
class ModelScores:
    """Per-sample outputs of one model, with where they came from.

    ``class_names`` is the name of each score column when the file tells it
    (e.g. from the class folder in UCF101 paths); joins use it to reorder
    columns when two files order classes differently. ``None`` when unknown.
    """

    names: np.ndarray
    labels: np.ndarray
    logits: np.ndarray
    features: np.ndarray | None
    source: Path
    class_names: list[str] | None = None


@contextmanager
def reading(path: Path):
    """Re-raise any failure to parse ``path`` as a ValueError that names it.

    numpy, zipfile, pickle and scipy report a corrupt file without its name;
    a user with ten score files needs to know which one is broken.
    """
    try:
        yield
    except ValueError as e:
        if str(path) in str(e):
            raise
        raise ValueError(f"{path}: {e}") from e
    except (OSError, EOFError, KeyError, TypeError, IndexError, zipfile.BadZipFile, pickle.UnpicklingError) as e:
        raise ValueError(f"{path}: cannot read: {type(e).__name__}: {e}") from e


def stack_rows(path: Path, rows) -> np.ndarray:
    """(N, C) float32 from per-sample score arrays of any shape holding C values each."""
    try:
        return np.stack([np.asarray(row, dtype=np.float32).reshape(-1) for row in rows])
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: per-sample score arrays are not numeric arrays of one size: {e}") from e


def folder_class_names(names: np.ndarray, labels: np.ndarray) -> list[str] | None:
    """Class names from ``<class folder>/<video>`` sample names, by label index.

    UCF101, HMDB51 and Kinetics lists name each video by its class folder. The
    result is None unless every sample has a folder, each label maps to one
    folder and each folder to one label, and every class index appears.
    """
    if labels.ndim != 1 or len(names) == 0:
        return None
    folders = [str(n).replace("\\", "/").rpartition("/")[0] for n in names]
    if not all(folders):
        return None
    return classes_by_label(folders, labels)


def classes_by_label(keys: list[str] | None, labels: np.ndarray) -> list[str] | None:
    """Class name of each label index, given each sample's class name; None if they do not map one to one."""
    if keys is None or labels.ndim != 1:
        return None
    by_label: dict[int, set[str]] = {}
    for key, label in zip(keys, labels.tolist()):
        by_label.setdefault(int(label), set()).add(key)
    if any(len(v) != 1 for v in by_label.values()) or sorted(by_label) != list(range(len(by_label))):
        return None
    names = [by_label[i].pop() for i in range(len(by_label))]
    return names if len(set(names)) == len(names) else None


def checked(path: Path, names, labels, logits, features=None, class_names=None) -> ModelScores:
    """Validate one file's arrays; every complaint names the file."""
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
    try:  # the table's own checks: label range, a 0/1 multi-label matrix as wide as the scores
        PredictionTable(names, labels, {"scores": logits})
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e
    logits = as_logits(path, logits, multilabel=labels.ndim == 2)
    if class_names is None:
        class_names = folder_class_names(names, labels)
    if class_names is not None and len(class_names) != logits.shape[1]:
        class_names = None  # some classes never appear as a label: their names are unknown
    return ModelScores(names, labels, logits, None if features is None else np.asarray(features), path, class_names)


def as_logits(path: Path, scores: np.ndarray, multilabel: bool) -> np.ndarray:
    """Scores the engine can read as logits: saved probabilities are turned back into logits, saying so.

    PySlowFast and many MMAction2 configs save softmax (or, multi-label,
    sigmoid) outputs. The engine applies its own softmax/sigmoid, which on
    probabilities flattens every row towards uniform and changes every
    confidence and fusion. ``log p`` is a logit vector whose softmax is ``p``
    again; ``log(p / (1 - p))`` one whose sigmoid is ``p``. Detected per file:

    - single-label, every score in [0, 1] and every row summing to 1: softmax probabilities;
    - multi-label, every score in [0, 1]: sigmoid probabilities (a model's raw
      logits are never all in [0, 1], as absent tags score below 0);
    - single-label in [0, 1] whose rows do not sum to 1: kept as stored, with a
      warning (sigmoid scores of a single-label model? a top-k cut?).
    """
    if scores.size == 0 or scores.min() < 0 or scores.max() > 1:
        return scores
    if multilabel:
        log.warning("%s: every score is in [0, 1]: read as sigmoid probabilities p, used as logits log(p / (1 - p))", path)
        probs = np.clip(scores.astype(np.float64), 1e-12, 1 - 1e-12)
        return (np.log(probs) - np.log1p(-probs)).astype(np.float32)
    if np.abs(scores.sum(axis=1, dtype=np.float64) - 1).max() <= SUM_TOLERANCE:
        log.warning("%s: every row is in [0, 1] and sums to 1: read as softmax probabilities p, used as logits log p", path)
        return np.log(np.maximum(scores, np.finfo(np.float32).tiny))
    log.warning("%s: every score is in [0, 1] but rows do not sum to 1: used as logits as stored "
                "(if they are probabilities, save log-probabilities or softmax rows)", path)
    return scores
