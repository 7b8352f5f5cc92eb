"""Where a prediction table comes from, and the costs it carries by default.

Commands and Python users name a table the same way: a bundled dataset, a
``table.npz`` from an earlier run, a store written by ``condsel extract``, or
one score file per model. This module turns any of them into a
:class:`PredictionTable` so that no command reaches into another.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from condsel.errors import names_the_file
from condsel.selection.data.table import PredictionTable

BUNDLED = ("ucf101-split1",)


def load_table(source: str | Path | Mapping[str, str | Path]) -> PredictionTable:
    """Read a prediction table from any source condsel knows.

    Parameters
    ----------
    source
        A bundled dataset name (``"ucf101-split1"``); a path to a ``table.npz``
        (or a plain npz with ``names``, ``labels``, ``logits``); a directory
        written by ``condsel extract``; or a mapping ``{model name: score
        file}`` of per-model score files, joined by sample name (see
        :func:`condsel.selection.data.importers.read_scores` for their layouts).

    Returns
    -------
    PredictionTable
        With the costs the source stores (none for score files and the
        bundled data: see :func:`default_costs`).

    Raises
    ------
    ValueError
        When a file is missing, unreadable or malformed; the message names it.

    Examples
    --------
    >>> table = load_table("ucf101-split1")
    >>> table.num_samples, sorted(table.logits)
    (3783, ['flow', 'gen_flow', 'iframe', 'mv', 'residual'])
    """
    from condsel.selection.data.importers import join_scores, read_scores

    if isinstance(source, Mapping):
        if not source:
            raise ValueError("no score files given")
        return join_scores({name: read_scores(path) for name, path in source.items()})
    if isinstance(source, str) and source in BUNDLED:
        from condsel.datasets.ucf101 import load_ucf101_split1

        return load_ucf101_split1()
    path = Path(source)
    if path.is_dir():
        from condsel.extract.store import load_store

        return load_store(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file or directory (and not a bundled table: {', '.join(BUNDLED)})")
    return names_the_file(PredictionTable.load)(path)


def default_costs(table: PredictionTable) -> tuple[dict[str, float], list[str]]:
    """GFLOPs per sample for the table's models, and lines saying how they were obtained.

    Tables of the UCF101 models (DMC-Net/CoViAR, SeqVLAD) get costs derived from
    the architectures (IDT has none: give it with ``--costs``); any other table keeps the costs stored with it.
    """
    from condsel.datasets.ucf101 import UCF101_KEYS, ucf101_costs

    if set(table.logits) <= set(UCF101_KEYS):
        costs, lines = ucf101_costs(table.logits)
        return costs, ["UCF101 models (DMC-Net/CoViAR, SeqVLAD), derived from their architectures:"] + lines
    return dict(table.gflops), [f"{m}: {g:.3f} GFLOPs/video (stored with the table)" for m, g in table.gflops.items()]
