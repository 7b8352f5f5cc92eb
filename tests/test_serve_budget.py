"""Serve's budget side without a server: answers' threshold and cost, the controller's curve, flag errors (exit 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from condsel.cli import main
from condsel.errors import CondselError
from condsel.pool.config import PoolConfig, PoolMember, build_pool
from condsel.pool.run_dir import load_run, save_run
from condsel.selection.data.table import PredictionTable
from condsel.selection.method.policies import SelectorPolicy
from condsel.serve.config import ServeOptions
from condsel.serve.routing import RunPool
from condsel.synthetic import CLASS_NAMES
from condsel.video.sampling import ClipSpec

CALIBRATION = [
    {"threshold": 0.0, "gflops": 0.002, "top1": 40.0},
    {"threshold": 0.4, "gflops": 0.004, "top1": 50.0},
    {"threshold": 0.8, "gflops": 0.010, "top1": 60.0},
]
MS = {"f": 2.0, "c": 8.0}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    torch.manual_seed(0)
    classes = len(CLASS_NAMES)
    pool = PoolConfig("f", (
        PoolMember("f", "frame2d", ClipSpec(4, 4, 32), classes, options={"widths": [8, 16]}),
        PoolMember("c", "conv3d_s", ClipSpec(8, 1, 48), classes, options={"widths": [8, 16], "strides": [[1, 2, 2], [2, 2, 2]]}),
    ))
    rng = np.random.default_rng(0)
    table = PredictionTable(names=np.array([f"v{i}" for i in range(20)]), labels=rng.integers(0, classes, 20),
                            logits={m: rng.normal(size=(20, classes)).astype(np.float32) for m in ("f", "c")},
                            gflops=pool.gflops, class_names=list(CLASS_NAMES))
    policy = SelectorPolicy(backbone="f", hidden=(8,), epochs=1).fit(table)
    return save_run(tmp_path_factory.mktemp("budget") / "run", pool, policy, list(CLASS_NAMES), 0.4, CALIBRATION, "logits",
                    models=build_pool(pool, random_weights=True))


def test_answers_carry_the_threshold_and_the_cost_in_each_known_unit(run_dir):
    run = load_run(run_dir, [])
    outputs = {"f": np.zeros(len(CLASS_NAMES)), "c": np.arange(len(CLASS_NAMES), dtype=float)}
    plain = RunPool(run, 0.4).answer("a.mp4", outputs, 0.25, 0.1)
    timed = RunPool(run, 0.4, MS).answer("a.mp4", outputs, 0.25, 0.1)
    assert plain["threshold"] == 0.25 and plain["cost"] == {"gflops": plain["gflops"]}
    assert plain["gflops"] == pytest.approx(run.policy.video_gflops(["f", "c"]))
    assert timed["cost"] == {"gflops": plain["gflops"], "ms": 10.0}  # both members ran: 2 + 8 ms
    with pytest.raises(CondselError, match=r"no \[ms\] cost for member\(s\) \['c'\]"):
        RunPool(run, 0.4, {"f": 1.0})


def test_the_ms_curve_of_a_gflops_run_is_its_curve_scaled_by_the_pools_ms_per_gflop(run_dir):
    pool = RunPool(load_run(run_dir, []), 0.4, MS)
    scale = sum(MS.values()) / sum(pool.run.gflops.values())
    curve = pool.operating_curve("ms")
    assert curve.unit == "ms" and curve.cheapest == pytest.approx(0.002 * scale) and curve.costliest == pytest.approx(0.010 * scale)
    control = pool.controller(ServeOptions(target_gflops=0.006, window=8))
    assert control.threshold == pytest.approx(0.4 + 0.4 * (0.006 - 0.004) / (0.010 - 0.004))  # linear between points
    assert pool.controller(ServeOptions()) is None


def _serve(run_dir, tmp_path, *flags):
    return main(["serve", "--run", str(run_dir), "--write-config", str(tmp_path / "s.yaml"), *flags])


@pytest.mark.parametrize("flags, says", [
    (["--target-gflops", "0.001"], "--target-gflops 0.001 is outside the run's operating range [0.002, 0.01] gflops"),
    (["--target-gflops", "0.5"], "is outside"),
    (["--slo-ms", "-5"], "argument --slo-ms: must be > 0, got -5"),
    (["--target-ms", "5"], "--target-ms needs member costs in ms"),
    (["--window", "0", "--target-gflops", "0.005"], "argument --window: must be >= 1, got 0"),
])
def test_bad_controller_flags_exit_2_naming_the_flag(run_dir, tmp_path, capsys, flags, says):
    pytest.importorskip("ray.serve", reason="condsel serve needs the serve extra")
    assert _serve(run_dir, tmp_path, *flags) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "s.yaml").exists()


def test_serve_costs_must_be_ms_and_travel_to_the_written_config(run_dir, tmp_path, capsys):
    pytest.importorskip("ray.serve", reason="condsel serve needs the serve extra")
    yaml = pytest.importorskip("yaml", reason="the written Ray Serve config needs the serve extra")
    (tmp_path / "g.toml").write_text('[gflops]\nf = 1.0\nc = 2.0\n')
    (tmp_path / "ms.toml").write_text('[ms]\nf = 2.0\nc = 8.0\n')
    assert _serve(run_dir, tmp_path, "--costs", str(tmp_path / "g.toml")) == 2
    assert "takes an [ms] table" in capsys.readouterr().err
    assert _serve(run_dir, tmp_path, "--costs", str(tmp_path / "ms.toml"), "--target-ms", "40", "--slo-ms", "500") == 2
    assert "--target-ms 40 is outside" in capsys.readouterr().err  # the scaled curve ends near 10 ms
    assert _serve(run_dir, tmp_path, "--costs", str(tmp_path / "ms.toml"), "--target-ms", "6", "--window", "16", "--slo-ms", "500") == 0
    args = yaml.safe_load((tmp_path / "s.yaml").read_text())["applications"][0]["args"]
    assert args["target_ms"] == 6.0 and args["window"] == 16 and args["slo_ms"] == 500.0 and args["costs_ms"] == MS
