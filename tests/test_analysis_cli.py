"""``condsel analyze``: each subcommand writes <name>.json and <name>.png; bad input exits 2 naming the file."""

import json

import numpy as np
import pytest

from condsel.datasets.ucf101 import ucf101_table
from condsel.analysis.views import PerViewScores
from condsel.cli import main
from condsel._io import write_json


@pytest.fixture(scope="module")
def small_table(tmp_path_factory):
    """Every fourth UCF101 split-1 video, saved as a table.npz with its costs."""
    table = ucf101_table()
    table = table.subset(np.arange(0, table.num_samples, 4))
    path = tmp_path_factory.mktemp("table") / "table.npz"
    table.save(path)
    return path, table


def outputs(directory, name):
    data = json.loads((directory / f"{name}.json").read_text())
    assert (directory / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    return data


def test_per_class_and_diagnostics_from_a_table_file(tmp_path, small_table):
    path, table = small_table
    args = ["--table", str(path), "--backbone", "residual", "--folds", "2", "--threshold", "0.3", "--out", str(tmp_path)]
    assert main(["analyze", "per-class", *args, "--named", "3"]) == 0
    per_class = outputs(tmp_path, "per_class")
    assert per_class["threshold"] == 0.3 and per_class["backbone"] == "residual"
    assert len(per_class["cheapest"]) == 3 and per_class["data"] == f"table {path}"
    assert sum(c["videos"] for c in per_class["classes"]) == table.num_samples
    assert main(["analyze", "diagnostics", *args]) == 0
    diagnostics = outputs(tmp_path, "diagnostics")
    assert np.sum(diagnostics["confusion"]) == table.num_samples
    assert diagnostics["pool"][0] == "residual"


def test_views_from_a_per_view_file(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    views = (np.eye(4)[labels][:, None] + 1.5 * rng.standard_normal((200, 3, 4))).astype(np.float32)
    PerViewScores(np.arange(200).astype(str), labels, {"m": views}, {"m": (3, 1)}, {"m": 2.0}).save(tmp_path / "v.npz")
    assert main(["analyze", "views", "--per-view", str(tmp_path / "v.npz"), "--draws", "3", "--out", str(tmp_path / "out")]) == 0
    points = outputs(tmp_path / "out", "views")["models"]["m"]["points"]
    assert [p["gflops"] for p in points] == [2.0, 4.0, 6.0]


def test_latency_needs_a_latency_block(tmp_path, capsys):
    write_json(tmp_path / "summary.json", {"models": {}, "curves": {}})
    assert main(["analyze", "latency", "--summary", str(tmp_path / "summary.json"), "--out", str(tmp_path / "out")]) == 2
    assert "summary.json" in capsys.readouterr().err
    assert main(["analyze", "views", "--run", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "--manifest" in capsys.readouterr().err
