"""Where a prediction table comes from, and the costs it carries by default.

Commands and Python users name a table the same way: a bundled dataset, a
``table.npz`` from an earlier run, a store written by ``condsel extract``, or
one score file per model. This module turns any of them into a
:class:`PredictionTable` so that no command reaches into another.

It sits above the layers it reads from: the table and score importers
(``selection.data``), the datasets that know their groups and costs
(``datasets``) and the extraction store (``extract``); none of those import it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path

from condsel.datasets.ucf101 import BUNDLED_SCORES, UCF101_KEYS, load_ucf101_split1, ucf101_costs, ucf101_join
from condsel.errors import CondselError, names_the_file
from condsel.extract.store import load_store
from condsel.models.costs import Costs, load_costs_toml
from condsel.selection.data.importers import read_scores
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
        :func:`condsel.selection.data.importers.read_scores` for their layouts;
        UCF101 videos are grouped by source video).

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
    if isinstance(source, Mapping):
        if not source:
            raise ValueError("no score files given")
        return ucf101_join({name: read_scores(path) for name, path in source.items()})
    if isinstance(source, str) and source in BUNDLED:
        return load_ucf101_split1()
    path = Path(source)
    if path.is_dir():
        return load_store(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file or directory (and not a bundled table: {', '.join(BUNDLED)})")
    return names_the_file(PredictionTable.load)(path)


def source_provenance(source: str | Path | Mapping[str, str | Path], table: PredictionTable) -> dict:
    """Where ``table`` (read by :func:`load_table` from ``source``) came from, as the summary's ``provenance``.

    Only the bundled published scores are known to be real; score files, tables
    and stores are the user's ("user": ``sources`` names them, and condsel makes
    no claim about what produced them). ``groups`` names
    what keeps samples in one fold: UCF101's gXX groups for its score files, the
    source video for a store's clips.
    """
    grouped = table.groups is not None
    if isinstance(source, Mapping):
        # ucf101_join groups only UCF101 names (v_Class_gXX_cYY)
        return {"data": "user", "sources": [f"{m}={p}" for m, p in source.items()], "groups": "UCF101 gXX" if grouped else None}
    if isinstance(source, str) and source in BUNDLED:
        return {"data": "real", "sources": [f"{source}: {BUNDLED_SCORES}"], "groups": "UCF101 gXX"}
    path = Path(source)
    if path.is_dir():
        return {"data": "user", "sources": [str(path)], "groups": "source video" if grouped else None}
    return {"data": "user", "sources": [str(path)], "groups": "as stored with the table" if grouped else None}


def default_costs(table: PredictionTable) -> tuple[dict[str, float], list[str]]:
    """GFLOPs per sample for the table's models, and lines saying how they were obtained.

    Tables of the UCF101 models (DMC-Net/CoViAR, SeqVLAD) get costs derived from
    the architectures (IDT has none: give it with ``--costs``); any other table keeps the costs stored with it.
    """
    if set(table.logits) <= set(UCF101_KEYS):
        costs, lines = ucf101_costs(table.logits)
        return costs, ["UCF101 models (DMC-Net/CoViAR, SeqVLAD), derived from their architectures:"] + lines
    return dict(table.gflops), [f"{m}: {g:.3f} GFLOPs/video (stored with the table)" for m, g in table.gflops.items()]


def resolve_table(source: str | Path | Mapping[str, str | Path], models: Iterable[str] | None = None,
                  costs: str | Path | None = None) -> tuple[PredictionTable, list[str], str]:
    """The table a command works on: read, cut to ``models``, with its costs attached.

    Parameters
    ----------
    source
        Anything :func:`load_table` takes.
    models
        A subset of the table's models, in this order; None keeps them all.
    costs
        A costs TOML file: a ``[gflops]`` table overrides the defaults of
        :func:`default_costs` model by model; an ``[ms]`` table (``condsel
        profile``) replaces every cost, since measured ms cannot be mixed with
        counted GFLOPs, and must then name every model.

    Returns
    -------
    table
        With a cost for every model that has one.
    derivation
        How the costs were obtained: the lines of :func:`default_costs`, and the override file if any.
    unit
        ``"gflops"`` or ``"ms"``: what the table's costs count.
    """
    table = load_table(source)
    values, derivation = default_costs(table)
    pool = list(table.logits)  # what a costs file may name, --models or not
    if models:
        table = table.select_models(list(models))
    if not costs:
        return table.with_costs({m: g for m, g in values.items() if m in table.logits}), derivation, "gflops"
    given = load_costs_toml(costs)
    table = with_given_costs(table, values, given, costs, pool=pool)
    derivation = ([f"profiled ms per video from {costs}"] if given.unit == "ms"
                  else derivation + [f"costs from {costs} override the defaults"])
    return table, derivation, given.unit


def with_given_costs(table: PredictionTable, defaults: Mapping[str, float], given: Costs, where: str | Path,
                     pool: Iterable[str] | None = None) -> PredictionTable:
    """``table`` with a costs file applied: ``[gflops]`` overrides ``defaults`` model by model; ``[ms]`` replaces them all.

    Measured ms cannot be mixed with counted GFLOPs, so an ``[ms]`` file must
    name every model of the table. A key naming no model of ``pool`` (the
    table's models by default) is an error: a typo such as ``larg = 3`` would
    otherwise leave that model at its default cost without a word.
    """
    known = list(table.logits if pool is None else pool)
    unknown = [name for name in given if name not in known]
    if unknown:
        hints = [f"{name!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(name, known, n=1)) else repr(name)
                 for name in unknown]
        raise CondselError(f"{where}: [{given.unit}] names no model of the pool: {', '.join(hints)}; the pool has {known}")
    if given.unit == "ms":
        missing = sorted(set(table.logits) - set(given))
        if missing:
            raise CondselError(f"{where}: [ms] has no cost for model(s) {missing}; profile every model (condsel profile)")
        merged = dict(given)
    else:
        merged = {**defaults, **given}
        missing = sorted(set(table.logits) - set(merged))
        if missing:
            raise CondselError(f"{where}: no GFLOPs for model(s) {missing} (no default either); add them to its [gflops] table")
    return table.with_costs({m: g for m, g in merged.items() if m in table.logits})
