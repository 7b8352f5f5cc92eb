"""Read per-model score files into a :class:`PredictionTable`.

Each file holds one model's outputs on a set of samples. Files are joined by
sample name (never by row order) and by class name, and every disagreement is
an error that names the files involved. Layouts, chosen by suffix and content:

- DMC-Net / CoViAR published scores (``*_score_model_best.npz``): ``names``,
  ``labels`` and a pickled ``scores`` object array of [(1, C) scores, label]
  rows; read with the arrays-only unpickler of :mod:`condsel._io`.
- plain npz: ``names`` (N,), ``labels`` (N,) or (N, C), ``logits`` (N, C),
  optionally ``features`` (N, D).
- CSV: header ``name,label,<one column per class>``; ``label`` is a class
  index, or ``|``-separated indices for multi-label data.
- IDT ``.mat`` (gulvarol/ltc): ``scores_idt``, ``vn_idt``, 1-based ``gt_idt``.
- scores in list order, ``SCORES:LIST``: a score file without names (mmaction2
  ``results.pkl``, SeqVLAD/TSN npz, an (N, C) npy/npz) and the test list
  whose line i names sample i; see :mod:`.listed`.
"""

from __future__ import annotations

from pathlib import Path

from condsel.errors import names_the_file
from condsel.selection.data.importers.join import join_scores, sample_key
from condsel.selection.data.importers.listed import read_listed_scores, read_sample_list
from condsel.selection.data.importers.named import read_csv, read_dense_trajectories, read_npz_with_names
from condsel.selection.data.importers.records import ModelScores, reading

__all__ = ["ModelScores", "join_scores", "read_listed_scores", "read_sample_list", "read_scores", "sample_key", "split_source"]


def split_source(source: str | Path) -> tuple[Path, Path | None]:
    """``SCORES`` or ``SCORES:LIST`` -> (score file, list file or None).

    A path that exists as given is never split, so file names with a colon
    still work; otherwise the text is split at its last colon.
    """
    text = str(source)
    if Path(text).exists() or ":" not in text:
        return Path(text), None
    scores, _, listing = text.rpartition(":")
    return Path(scores), Path(listing)


@names_the_file
def read_scores(source: str | Path, list_file: str | Path | None = None) -> ModelScores:
    """One model's scores from a file in any accepted layout.

    Parameters
    ----------
    source
        The score file, or ``SCORES:LIST`` for scores in list order.
    list_file
        The list file for scores in list order (instead of the ``:LIST`` suffix).

    Returns
    -------
    ModelScores
        Names, labels, (N, C) logits and, when the file tells them, class names.

    Raises
    ------
    ValueError
        Any problem reading or checking the file, with the file's name.

    Examples
    --------
    >>> mv = read_scores("ucf101_coviar__ucf101_mv__split1__mv_score_model_best.npz")  # doctest: +SKIP
    >>> flow = read_scores("ucf101_flow_split1.npz:flow_test_split1.txt")  # doctest: +SKIP
    """
    path, listed = split_source(source)
    listed = Path(list_file) if list_file is not None else listed
    for p in (path, listed):
        if p is not None and not p.is_file():
            raise ValueError(f"{p}: no such file")
    if listed is not None:
        return read_listed_scores(path, listed)
    suffix = path.suffix.lower()
    with reading(path):
        if suffix == ".csv":
            return read_csv(path)
        if suffix == ".mat":
            return read_dense_trajectories(path)
        if suffix in (".pkl", ".pickle", ".npy"):
            raise ValueError(f"{path}: holds no sample names; give the list file it follows as SCORES:LIST")
        return read_npz_with_names(path)
