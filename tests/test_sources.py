"""``load_table``: every source a command names gives the table the direct reader gives."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES

from condsel.datasets.ucf101 import UCF101_MODELS, load_ucf101_split1, ucf101_score_files
from condsel.selection.data.importers import join_scores, read_scores
from condsel.selection.data.table import PredictionTable
from condsel.sources import default_costs, load_table, resolve_table

SUBSET = FIXTURES / "ucf101_scores_subset"


def _same(a: PredictionTable, b: PredictionTable) -> None:
    np.testing.assert_array_equal(a.names, b.names)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert sorted(a.logits) == sorted(b.logits) and a.gflops == b.gflops
    for m in a.logits:
        np.testing.assert_array_equal(a.logits[m], b.logits[m])


def test_bundled_name():
    _same(load_table("ucf101-split1"), load_ucf101_split1())


def test_score_files_by_model_name():
    files = ucf101_score_files(SUBSET, split=1)
    table = load_table(files)
    _same(table, join_scores({m: read_scores(p) for m, p in files.items()}))
    assert load_table({"mv": files["mv"]}).models == ["mv"]
    # UCF101 video names: grouped by the long video each clip is cut from (v_<Class>_gXX_cYY)
    assert table.groups[:3].tolist() == ["ApplyEyeMakeup_g01", "ApplyEyeMakeup_g02", "ApplyLipstick_g01"]


def test_a_saved_table_round_trips(tmp_path):
    table = load_table(ucf101_score_files(SUBSET, split=1)).with_costs({m: float(i + 1) for i, m in enumerate(UCF101_MODELS)})
    table.save(tmp_path / "table.npz")
    _same(load_table(tmp_path / "table.npz"), table)
    _same(load_table(str(tmp_path / "table.npz")), table)


def test_default_costs_derive_ucf101_and_keep_stored_ones(tmp_path):
    ucf = load_table(ucf101_score_files(SUBSET, split=1))
    costs, lines = default_costs(ucf)
    assert set(costs) == set(UCF101_MODELS) and costs["mv"] < costs["iframe"]
    assert lines[0].startswith("UCF101") and any("not counted" in line for line in lines)
    other = PredictionTable(names=np.array(["a", "b"]), labels=np.array([0, 1]), logits={"x": np.eye(2, dtype=np.float32)},
                            gflops={"x": 2.5})
    assert default_costs(other) == ({"x": 2.5}, ["x: 2.500 GFLOPs/video (stored with the table)"])


def test_bad_sources_name_themselves(tmp_path):
    with pytest.raises(ValueError, match=r"nowhere\.npz: no such file or directory"):
        load_table(tmp_path / "nowhere.npz")
    with pytest.raises(ValueError, match="ucf101-split2: no such file or directory.*ucf101-split1"):
        load_table("ucf101-split2")
    with pytest.raises(ValueError, match="no score files"):
        load_table({})
    with pytest.raises(ValueError, match=r"empty_dir: not an extraction store"):
        (tmp_path / "empty_dir").mkdir()
        load_table(tmp_path / "empty_dir")


def test_resolve_table_cuts_models_and_overrides_costs(tmp_path):
    """The one table + costs recipe of `condsel table` and `condsel analyze`: derived costs, then the TOML's."""
    (tmp_path / "costs.toml").write_text("[gflops]\nmv = 40.0\n")
    files = ucf101_score_files(SUBSET, split=1)
    table, derivation, unit = resolve_table(files, models=["iframe", "mv"], costs=tmp_path / "costs.toml")
    derived, lines = default_costs(load_table(files))
    assert table.models == ["mv", "iframe"]
    assert derivation == lines + [f"costs from {tmp_path / 'costs.toml'} override the defaults"]
    assert table.gflops == {"iframe": derived["iframe"], "mv": 40.0}
    assert unit == "gflops"
    plain, plain_lines, _ = resolve_table(files)
    assert plain.gflops == derived and plain_lines == lines
