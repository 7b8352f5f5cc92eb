"""Join per-model scores into one :class:`PredictionTable`, by sample name and by class name.

Files from different codebases spell one video differently
(``ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi`` in DMC-Net,
``ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01`` in a TSN flow list,
``v_ApplyEyeMakeup_g01_c01`` in IDT) and may order classes differently. Names
are matched exactly when every file uses the same ones, else by their base
name without a video suffix when that is unique in every file. Score columns
are reordered by class name when both files name their classes. Every
disagreement that remains is an error naming the files.
"""

from __future__ import annotations

import logging
import re
from pathlib import PurePosixPath

import numpy as np

from condsel.selection.data.importers.records import ModelScores
from condsel.selection.data.table import PredictionTable

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".webm", ".mov", ".flv", ".mpg", ".mpeg", ".m4v", ".3gp"}


def sample_key(name: str) -> str:
    """The base name of a sample without folder or video suffix."""
    path = PurePosixPath(str(name).replace("\\", "/"))
    return path.stem if path.suffix.lower() in VIDEO_SUFFIXES else path.name


def join_scores(per_model: dict[str, ModelScores], groups: np.ndarray | None = None) -> PredictionTable:
    """Join models by sample name; the first model's row order and names are kept.

    Parameters
    ----------
    per_model
        Model name -> its scores, as returned by :func:`read_scores`.
    groups
        One group per row of the first model (samples of a group never
        straddle folds), given by the caller that knows the dataset, e.g.
        :func:`condsel.datasets.ucf101.ucf101_join`; None: no grouping.

    Returns
    -------
    PredictionTable
        One row per sample; logits in the class order of the first file that
        names its classes (``class_names``), else as stored; ``groups`` as given.

    Examples
    --------
    >>> table = join_scores({"mv": read_scores("mv.npz"), "idt": read_scores("idt.mat")})  # doctest: +SKIP
    """
    if not per_model:
        raise ValueError("no score files given")
    (first_name, first), *rest = per_model.items()
    for name, other in rest:
        if other.logits.shape[1] != first.logits.shape[1]:
            raise ValueError(
                f"{other.source} ({name}) has {other.logits.shape[1]} classes, "
                f"{first.source} ({first_name}) has {first.logits.shape[1]}"
            )
    keys = _row_keys(per_model)
    reference = next((s for s in per_model.values() if s.class_names is not None), None)
    first_logits, first_labels = _in_class_order(first, reference)
    logits, features = {}, {}
    for name, scores in per_model.items():
        order = _align(keys[first_name], keys[name])
        model_logits, labels = _in_class_order(scores, reference)
        labels = labels[order]
        if not np.array_equal(labels, first_labels):
            i = int(np.flatnonzero(np.any((labels != first_labels).reshape(len(order), -1), axis=1))[0])
            raise ValueError(
                f"label of {first.names[i]} disagrees: {first_labels[i]} in {first.source}, "
                f"{labels[i]} in {scores.source}{_unnamed_hint(first, scores)}"
            )
        logits[name] = model_logits[order]
        if scores.features is not None:
            features[name] = scores.features[order]
    return PredictionTable(
        first.names, first_labels, logits, features=features,
        class_names=None if reference is None else list(reference.class_names),
        groups=groups,
    )


def _unnamed_hint(one: ModelScores, other: ModelScores) -> str:
    """Why two files' labels may disagree when only one names its classes: the other's columns were taken as stored."""
    if (one.class_names is None) == (other.class_names is None):
        return ""
    unnamed, named = (one, other) if one.class_names is None else (other, one)
    return (
        f"; {unnamed.source} carries no class names, so its columns could not be matched to {named.source}'s by name: "
        "name them (an npz: a 'classes' array, one name per score column; a CSV: class names as column headers) "
        "or store them in the same class order"
    )


def _row_keys(per_model: dict[str, ModelScores]) -> dict[str, np.ndarray]:
    """Per model, the names to match rows by: the names themselves, else their base names."""
    (first_name, first), *rest = per_model.items()
    if all(_same_set(first.names, other.names) for _, other in rest):
        return {m: s.names for m, s in per_model.items()}
    keys = {m: np.asarray([sample_key(n) for n in s.names]) for m, s in per_model.items()}
    unique = all(len(np.unique(k)) == len(k) for k in keys.values())
    compared = keys if unique else {m: s.names for m, s in per_model.items()}
    for name, other in rest:
        missing = np.setdiff1d(compared[first_name], compared[name])
        extra = np.setdiff1d(compared[name], compared[first_name])
        if missing.size or extra.size:
            raise ValueError(
                f"{other.source} ({name}) and {first.source} ({first_name}) hold different samples: "
                f"{missing.size} only in {first_name} (e.g. {[str(x) for x in missing[:2]]}), "
                f"{extra.size} only in {name} (e.g. {[str(x) for x in extra[:2]]})"
            )
    log.info("score files spell sample names differently; matched by base name without folder or video suffix")
    return keys


def _same_set(a: np.ndarray, b: np.ndarray) -> bool:
    return len(a) == len(b) and np.array_equal(np.sort(a), np.sort(b))


def class_key(name: str) -> str:
    """A class name as compared across files: case, spaces and punctuation ignored.

    UCF101 itself spells one class ``HandstandPushups`` (folder) and
    ``HandStandPushups`` (video names); Kinetics lists write ``arm wrestling``
    or ``arm_wrestling``.
    """
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _in_class_order(scores: ModelScores, reference: ModelScores | None) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of ``scores`` with columns in ``reference``'s class order."""
    if reference is None or scores.class_names is None or scores.class_names == reference.class_names:
        return scores.logits, scores.labels
    mine = [class_key(c) for c in scores.class_names]
    theirs = [class_key(c) for c in reference.class_names]
    if len(set(mine)) != len(mine) or len(set(theirs)) != len(theirs):
        mine, theirs = list(scores.class_names), list(reference.class_names)
    only_here = sorted(c for c, k in zip(scores.class_names, mine) if k not in set(theirs))
    only_there = sorted(c for c, k in zip(reference.class_names, theirs) if k not in set(mine))
    if only_here or only_there:
        raise ValueError(
            f"classes of {scores.source} and {reference.source} cannot be mapped by name: "
            f"{len(only_here)} only in the first (e.g. {only_here[:3]}), {len(only_there)} only in the second "
            f"(e.g. {only_there[:3]})"
        )
    columns = np.asarray([mine.index(k) for k in theirs])
    if np.array_equal(columns, np.arange(len(columns))):
        return scores.logits, scores.labels
    log.info("%s orders classes differently from %s; columns mapped by class name", scores.source, reference.source)
    labels = scores.labels[:, columns] if scores.labels.ndim == 2 else np.argsort(columns)[scores.labels]
    return scores.logits[:, columns], labels


def _align(reference: np.ndarray, names: np.ndarray) -> np.ndarray:
    """Index into ``names`` that puts it in ``reference`` order."""
    order = np.argsort(names)
    return order[np.searchsorted(names, reference, sorter=order)]
