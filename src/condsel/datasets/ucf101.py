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

from importlib import resources
from pathlib import Path

from condsel.selection.table import PredictionTable

UCF101_MODELS = ("mv", "residual", "gen_flow", "flow", "iframe")


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


def load_ucf101_split1() -> PredictionTable:
    """The bundled UCF101 split-1 table (costs not attached; see :mod:`condsel.datasets.ucf101_costs`)."""
    with resources.as_file(resources.files("condsel") / "data" / "ucf101_split1.npz") as path:
        return PredictionTable.load(path)
