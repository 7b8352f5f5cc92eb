"""``condsel table`` end to end on the real UCF101 split-1 scores: the issue's contract and bars.

The bars need the five whole published files (../shared/data, skipped without
it); the 202-video subset in tests/data runs the same command from a fresh clone.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FIXTURES, shared_data

from condsel.cli import main
from condsel.datasets.ucf101 import ucf101_score_files
from condsel.selection.data.table import PredictionTable
from condsel.sources import load_table

def _run_table(scores_dir, out, *extra):
    argv = ["table", "--backbone", "mv", "--folds", "5", "--seed", "0", *extra, "--out", str(out)]
    for name, path in ucf101_score_files(scores_dir, split=1).items():
        argv += ["--scores", f"{name}={path}"]
    assert main(argv) == 0
    return out, json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def split1_run(tmp_path_factory):
    return _run_table(shared_data("ucf101_scores"), tmp_path_factory.mktemp("ucf101_split1"), "--bootstrap", "30")


@pytest.mark.slow
def test_the_subset_runs_end_to_end(tmp_path):
    out, summary = _run_table(FIXTURES / "ucf101_scores_subset", tmp_path, "--bootstrap", "0")
    assert set(summary["models"]) == {"mv", "residual", "gen_flow", "flow", "iframe"}
    for name, path in ucf101_score_files(FIXTURES / "ucf101_scores_subset", split=1).items():
        with np.load(path, allow_pickle=True) as raw:  # numpy's own reader as the reference
            predicted = np.array([row[0].argmax() for row in raw["scores"]])
            top1 = 100 * np.mean(predicted == raw["labels"])
        assert summary["models"][name]["top1"] == pytest.approx(top1, abs=1e-9), name
    oracle = summary["curves"]["oracle"][-1]["top1"]
    assert oracle >= max(m["top1"] for m in summary["models"].values())
    assert (out / "curve.png").stat().st_size > 10_000


@pytest.mark.slow
def test_summary_schema(split1_run):
    out, summary = split1_run
    assert set(summary["models"]) == {"mv", "residual", "gen_flow", "flow", "iframe"}
    for model in summary["models"].values():
        assert model["gflops"] > 0 and 0 <= model["top1"] <= 100
    for curve in ("selector", "random", "oracle"):
        points = summary["curves"][curve]
        assert points and all({"gflops", "top1"} <= set(p) for p in points)
    assert (out / "curve.png").stat().st_size > 10_000


@pytest.mark.slow
def test_split1_bars(split1_run):
    _, summary = split1_run
    head = summary["summary"]
    assert head["best_model"] == "iframe" and head["best_top1"] == pytest.approx(86.70, abs=0.01)
    assert head["gflops_ratio_to_match_best"] <= 0.75
    assert head["top1_gain_at_best_gflops"] >= 0
    assert head["oracle_gap_closed"] > 0


@pytest.mark.slow
def test_selector_and_oracle_points_include_the_backbone(split1_run):
    _, summary = split1_run
    backbone = summary["models"]["mv"]["gflops"]
    assert min(p["gflops"] for p in summary["curves"]["selector"]) >= backbone
    assert summary["curves"]["oracle"][0]["gflops"] == pytest.approx(backbone)
    # the oracle reaches the per-video oracle accuracy the data README states (96.6 on split 1)
    assert summary["curves"]["oracle"][-1]["top1"] == pytest.approx(96.6, abs=0.1)


@pytest.mark.slow
def test_budget_calibration_lands_near_the_target(split1_run):
    _, summary = split1_run
    for b in summary["budget"]:
        assert abs(b["reached_gflops"] - b["target_gflops"]) / b["target_gflops"] < 0.15


def test_costs_file_overrides_defaults(tmp_path):
    """A flag's test on a small table: two models of the 202-video subset with stored costs, one policy, 3 folds.

    The models are renamed so that no UCF101 cost is derived: the defaults are the costs stored with the table.
    """
    files = ucf101_score_files(FIXTURES / "ucf101_scores_subset", split=1)
    real = load_table({m: files[m] for m in ("mv", "iframe")})
    table = PredictionTable(real.names, real.labels, {"cheap": real.logits["mv"], "costly": real.logits["iframe"]},
                            gflops={"cheap": 44.0, "costly": 288.0}, groups=real.groups)
    table.save(tmp_path / "table.npz")
    costs = tmp_path / "costs.toml"
    costs.write_text("[gflops]\ncheap = 10.0\n")
    out = tmp_path / "run"
    assert main(["table", "--table", str(tmp_path / "table.npz"), "--backbone", "cheap", "--policies", "selector",
                 "--folds", "3", "--costs", str(costs), "--bootstrap", "0", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models"]["cheap"]["gflops"] == 10.0  # from the file
    assert summary["models"]["costly"]["gflops"] == 288.0  # stored with the table


def test_ms_costs_replace_every_cost_and_the_summary_names_the_unit(tmp_path, capsys):
    """On the 202-video subset's two models, one policy, 3 folds: a flag's test needs no full comparison."""
    files = {m: str(p) for m, p in ucf101_score_files(FIXTURES / "ucf101_scores_subset", split=1).items() if m in ("mv", "iframe")}
    scores = [f"--scores={m}={p}" for m, p in files.items()]
    costs = tmp_path / "ms.toml"
    costs.write_text("[ms]\nmv = 3.0\niframe = 40.0\n")
    out = tmp_path / "run"
    flags = ["--backbone", "mv", "--policies", "selector", "--folds", "3", "--bootstrap", "0", "--costs", str(costs)]
    assert main(["table", *scores, *flags, "--out", str(out)]) == 0
    assert "profiled ms per video" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cost_unit"] == "ms"
    assert summary["models"]["mv"]["gflops"] == 3.0 and summary["models"]["iframe"]["gflops"] == 40.0
    costs.write_text("[ms]\nmv = 3.0\n")  # ms cannot be mixed with the other models' counted GFLOPs
    assert main(["table", *scores, *flags, "--out", str(tmp_path / "part")]) == 2
    assert "no cost for model(s) ['iframe']" in capsys.readouterr().err


def test_bad_inputs_are_clear_errors(tmp_path, capsys):
    assert main(["table", "--scores", f"mv={tmp_path / 'missing.npz'}", "--backbone", "mv", "--out", str(tmp_path)]) == 2
    assert "missing.npz" in capsys.readouterr().err
    bad = tmp_path / "costs.toml"
    bad.write_text("[gflops]\nmv = -1\n")
    assert main(["table", "--bundled", "ucf101-split1", "--backbone", "mv", "--costs", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "not a positive number" in capsys.readouterr().err
