"""``condsel profile`` and costs files in either unit: [gflops] counted, [ms] measured."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import FIXTURES
from condsel.cli import main
from condsel.errors import CondselError
from condsel.models.costs import Costs, load_costs_toml
from condsel.pool.config import build_pool, write_pool_config
from condsel.pool.run_dir import save_run
from condsel.selection.data.table import PredictionTable
from condsel.selection.method.policies import SelectorPolicy
from condsel.synthetic import CLASS_NAMES
from condsel.pool.profile import spread
from condsel.workflows.demo import SYNTHETIC_POOL
from condsel._io import read_toml

VIDEO = FIXTURES / "videos" / "arm_wrestling_cut.mp4"


def _write(tmp_path, text, name="costs.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_costs_file_in_either_unit_carries_its_unit(tmp_path):
    g = load_costs_toml(_write(tmp_path, "[gflops]\na = 1.5\nb = 3\n"))
    m = load_costs_toml(_write(tmp_path, "[ms]\na = 2.0\n[profile]\nthreads = 1\n", "ms.toml"))
    assert g == {"a": 1.5, "b": 3.0} and g.unit == "gflops" and g.label == "GFLOPs"
    assert m == {"a": 2.0} and m.unit == "ms" and m.label == "ms"
    assert isinstance(m, Costs)


@pytest.mark.parametrize("text, says", [
    ("[other]\na = 1\n", "[other]"),
    ("a = 1\n", "neither"),
    ("[gflops]\na = 1\n[ms]\na = 2\n", "both"),
    ("[seconds]\na = 1\n", "[seconds]"),
    ("[ms]\na = -1\n", "not a positive number"),
    ("[ms]\n", "empty"),
])
def test_costs_files_with_no_single_known_unit_are_refused_naming_the_file(tmp_path, text, says):
    path = _write(tmp_path, text, "BAD.toml")
    with pytest.raises(CondselError, match=r"BAD\.toml") as e:
        load_costs_toml(path)
    assert says in str(e.value)


def test_spread_is_the_median_and_the_interpolated_90th_percentile():
    # ten values 1..10: median 5.5; p90 at rank 0.9 * 9 = 8.1 -> 9 + 0.1 * (10 - 9) = 9.1
    assert spread(range(1, 11)) == pytest.approx({"median_ms": 5.5, "p90_ms": 9.1})


def test_profile_writes_an_ms_costs_file_that_the_reader_accepts(tmp_path, capsys):
    pool = write_pool_config(SYNTHETIC_POOL, tmp_path / "pool.toml")
    out = tmp_path / "costs.toml"
    assert main(["profile", "--pool", str(pool), "--random-weights", "--batch", "1,2", "--repeats", "3",
                 "--videos", str(VIDEO), "--out", str(out)]) == 0
    costs = load_costs_toml(out)
    assert costs.unit == "ms" and list(costs) == SYNTHETIC_POOL.names
    meta = read_toml(out, "costs")["profile"]
    assert meta["torch"] == torch.__version__ and meta["threads"] == 1 and meta["batches"] == [1, 2]
    assert meta["device"] == "cpu" and meta["hardware"]
    for name in SYNTHETIC_POOL.names:
        stats = meta["forward"][name]
        assert set(stats) == {"batch_1", "batch_2"}
        assert stats["batch_1"]["median_ms"] == costs[name]
        assert all(0 < s["median_ms"] <= s["p90_ms"] for s in stats.values())
    assert 0 < meta["decode"]["median_ms"] <= meta["decode"]["p90_ms"] and set(meta["views"]) == set(SYNTHETIC_POOL.names)
    # conv3d_l runs a 3D net on 9 views (3 clips x 3 crops), frame2d a 2D net on one view: far costlier in both units
    gflops = SYNTHETIC_POOL.gflops
    assert gflops["conv3d_l"] > 10 * gflops["frame2d"] and costs["conv3d_l"] > 3 * costs["frame2d"]
    assert "forward per video" in capsys.readouterr().out


def test_profile_without_weights_or_cuda_is_a_usage_error(tmp_path, capsys):
    pool = write_pool_config(SYNTHETIC_POOL, tmp_path / "pool.toml")
    assert main(["profile", "--pool", str(pool), "--out", str(tmp_path / "c.toml")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["profile", "--pool", str(pool), "--random-weights", "--device", "cuda", "--out", str(tmp_path / "c.toml")]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "c.toml").exists()


def test_profile_of_a_run_directory_times_the_members_its_policy_runs(tmp_path):
    pool = SYNTHETIC_POOL
    rng = np.random.default_rng(0)
    logits = {m: rng.normal(size=(20, len(CLASS_NAMES))).astype(np.float32) for m in ("frame2d", "conv3d_s")}
    table = PredictionTable(names=np.array([f"v{i}" for i in range(20)]), labels=rng.integers(0, len(CLASS_NAMES), 20),
                            logits=logits, gflops={m: pool.gflops[m] for m in logits}, class_names=list(CLASS_NAMES))
    policy = SelectorPolicy(backbone="frame2d", hidden=(8,), epochs=1).fit(table)  # never runs conv3d_l
    run = save_run(tmp_path / "run", pool, policy, list(CLASS_NAMES), 0.5, policy.sweep(table), "logits",
                   models=build_pool(pool, random_weights=True))
    assert main(["profile", "--run", str(run), "--repeats", "2", "--out", str(tmp_path / "c.toml")]) == 0
    costs = load_costs_toml(tmp_path / "c.toml")
    assert costs.unit == "ms" and sorted(costs) == ["conv3d_s", "frame2d"]
    assert "decode" not in read_toml(tmp_path / "c.toml", "costs")["profile"]  # no --videos: decoding not timed
