"""Datasets shipped with the package, so that the demo needs no other files.

``ucf101_split1.npz`` is a float16 copy of the per-video scores of five models
on the 3,783 test videos of UCF101 split 1, published by
facebookresearch/dmc-net (``exp_my/**/*_score_model_best.npz``, MIT licence,
Copyright (c) Facebook, Inc. and its affiliates); see ``data/ATTRIBUTION.md``.
float16 keeps ~3 significant digits of each score: the arg-max moves only for
a few near-tied videos and each model's top-1 stays within one video of the
original (checked in the tests against the published files).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np

from condsel.selection.table import PredictionTable

UCF101_MODELS = ("mv", "residual", "gen_flow", "flow", "iframe")  # DMC-Net / CoViAR
UCF101_POOL7 = UCF101_MODELS + ("seqvlad_rgb", "seqvlad_flow")  # + SeqVLAD on BN-Inception (ucf101_more/)


def ucf101_score_files(directory: str | Path, split: int) -> dict[str, Path]:
    """The published score file of each model for one split, by model key."""
    directory = Path(directory)
    names = {
        "mv": f"ucf101_coviar__ucf101_mv__split{split}__mv_score_model_best.npz",
        "residual": f"ucf101_coviar__ucf101_residual__split{split}__residual_score_model_best.npz",
        "iframe": f"ucf101_coviar__ucf101_iframe__split{split}__iframe_score_model_best.npz",
        "flow": f"ucf101_coviar__ucf101_flow__split{split}__flow_score_model_best.npz",
        "gen_flow": f"ucf101_gen_flow__split{split}__mv_score_model_best.npz",
    }
    files = {model: directory / name for model, name in names.items()}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ValueError(f"missing UCF101 score files: {missing}")
    return files


def ucf101_more_sources(directory: str | Path, split: int) -> dict[str, str]:
    """Score sources of the SeqVLAD and IDT models in ``ucf101_more/`` for one split, by model key.

    SeqVLAD files hold no names: their source is ``SCORES:LIST`` (scores in
    list order). IDT has no network cost: a pool with it needs a user-given cost.
    """
    directory = Path(directory)
    sources = {
        "seqvlad_rgb": (directory / "seqvlad" / f"ucf101_rgb_split{split}.npz", directory / "seqvlad" / f"rgb_test_split{split}.txt"),
        "seqvlad_flow": (directory / "seqvlad" / f"ucf101_flow_split{split}.npz", directory / "seqvlad" / f"flow_test_split{split}.txt"),
        "idt": (directory / "idt" / f"ucf_idt_split{split}.mat",),
    }
    missing = [str(p) for files in sources.values() for p in files if not p.is_file()]
    if missing:
        raise ValueError(f"missing UCF101 score files: {missing}")
    return {model: ":".join(str(p) for p in files) for model, files in sources.items()}


def load_ucf101_pool(data_dir: str | Path, split: int, models: tuple[str, ...] = UCF101_POOL7) -> PredictionTable:
    """Join the published UCF101 scores of ``models`` for one split (no costs attached).

    Parameters
    ----------
    data_dir
        The folder holding ``ucf101_scores/`` and ``ucf101_more/`` (``../shared/data``).
    split
        Official split, 1-3.
    models
        Keys among :data:`UCF101_MODELS`, ``seqvlad_rgb``, ``seqvlad_flow``, ``idt``;
        default the 7-network pool.

    Examples
    --------
    >>> table = load_ucf101_pool("../shared/data", split=1)  # doctest: +SKIP
    >>> table = table.with_costs(ucf101_costs(table.logits)[0])  # doctest: +SKIP
    """
    from condsel.selection.importers import join_scores, read_scores

    data_dir = Path(data_dir)
    sources = {**ucf101_score_files(data_dir / "ucf101_scores", split), **ucf101_more_sources(data_dir / "ucf101_more", split)}
    unknown = sorted(set(models) - set(sources))
    if unknown:
        raise ValueError(f"unknown UCF101 model keys {unknown}; known: {sorted(sources)}")
    return join_scores({m: read_scores(sources[m]) for m in models})


def load_ucf101_split1() -> PredictionTable:
    """The bundled UCF101 split-1 table (costs not attached; see :mod:`condsel.datasets.ucf101_costs`)."""
    with resources.as_file(resources.files("condsel") / "data" / "ucf101_split1.npz") as path:
        return PredictionTable.load(path)


_UCF_NAME = re.compile(r"v_(?P<cls>.+)_g(?P<group>\d+)_c\d+")


def _ucf101_match(name) -> re.Match | None:
    return _UCF_NAME.search(Path(str(name)).stem)


def ucf101_groups(names: np.ndarray) -> np.ndarray | None:
    """UCF101 clips of one group are cut from one long video; keep them in one fold.

    Returns None unless every name follows UCF101's ``v_<Class>_gXX_cYY`` pattern.
    """
    groups = []
    for name in names:
        match = _ucf101_match(name)
        if match is None:
            return None
        groups.append(f"{match['cls']}_g{match['group']}")
    return np.asarray(groups)


def ucf101_video_classes(names: np.ndarray) -> list[str] | None:
    """The class part of ``v_<Class>_gXX_cYY`` video names, for files that omit the class folder (IDT).

    None unless every name follows the pattern.
    """
    matches = [_ucf101_match(n) for n in names]
    return None if any(m is None for m in matches) else [m["cls"] for m in matches]
