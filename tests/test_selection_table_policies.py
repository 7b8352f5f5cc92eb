"""``condsel table`` with policies: the summary contract, the chosen backbone, bad input and atomic output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from condsel.cli import main
from condsel.datasets.ucf101 import load_ucf101_split1

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_table(tmp_path_factory):
    """600 real UCF101 split-1 videos, three models, with costs (a table.npz as `condsel table --table` reads)."""
    table = load_ucf101_split1().select_models(["mv", "flow", "iframe"]).with_costs({"mv": 44.36, "flow": 44.36, "iframe": 287.79})
    path = tmp_path_factory.mktemp("tables") / "small.npz"
    table.subset(np.random.default_rng(0).permutation(table.num_samples)[:600]).save(path)
    return path


@pytest.fixture(scope="module")
def run(small_table, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    argv = ["table", "--table", str(small_table), "--policies", "cascade", "static", "--folds", "3", "--bootstrap", "20", "--out", str(out)]
    assert main(argv) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_summary_keeps_the_papers_keys_and_adds_the_policy_sections(run):
    out, summary = run
    for key in ("models", "curves", "summary", "budget", "backbone", "pool", "protocol"):
        assert key in summary
    assert summary["curves"]["selector"] and summary["backbone_chosen"] is True
    assert summary["backbone"] in ("mv", "flow", "iframe")
    assert set(summary["policies"]) == {"cascade", "cascade_stacked", "static"}
    for points in summary["policies"].values():
        assert all({"gflops", "top1"} <= set(p) for p in points)
    assert all({"members", "gflops", "top1"} <= set(p) for p in summary["static"]) and len(summary["static"]) == 7
    budgets = [p["budget"] for p in summary["recommended"]]
    assert budgets[0] == pytest.approx(44.36, abs=0.01) and budgets[-1] == pytest.approx(287.79, abs=0.01)
    for p in summary["recommended"]:
        assert p["policy"] in summary["policies"] and 0 < p["top1"] <= 100 and p["gflops"] >= 44.35
    assert (out / "curve.png").stat().st_size > 10_000 and (out / "table.npz").is_file()
    assert not list(out.parent.glob(".out.*"))  # the temporary directory is gone


def test_recommended_is_not_below_the_cheapest_static_choice(run):
    _, summary = run
    flow = next(p for p in summary["static"] if p["members"] == ["flow"])
    assert summary["recommended"][0]["top1"] >= flow["top1"] - 2.0  # same cost, chosen without the held-out fold


@pytest.mark.parametrize("argv, message", [
    (["--models", "mv"], "pool of one model"),
    (["--policies", "cascade,magic"], "unknown policies"),
    (["--backbone", "nope"], "not among the models"),
])
def test_bad_input_exits_2_without_an_output_directory(small_table, tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert main(["table", "--table", str(small_table), "--out", str(out), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (out / "summary.json").exists()  # at most the provenance record cli.main writes first


def test_duplicate_score_names_exit_2(tmp_path, capsys):
    path = tmp_path / "a.csv"
    path.write_text("name,label,c0,c1\nv0,0,1.0,0.0\nv1,1,0.0,1.0\n")
    assert main(["table", "--scores", f"a={path}", "--scores", f"a={path}", "--out", str(tmp_path / "out")]) == 2
    assert "twice" in capsys.readouterr().err


def test_a_failure_part_way_leaves_no_output_that_looks_complete(small_table, tmp_path, monkeypatch):
    import condsel.report.plots as plots

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(plots, "plot_curves", broken)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        main(["table", "--table", str(small_table), "--policies", "cascade", "--backbone", "flow", "--folds", "3", "--bootstrap", "0", "--out", str(out)])
    assert not (out / "summary.json").exists() and not (out / "table.npz").exists() and not list(tmp_path.glob(".out.*"))


def test_two_folds_give_fronts_but_no_nested_recommendation(small_table, tmp_path):
    out = tmp_path / "out"
    assert main(["table", "--table", str(small_table), "--policies", "cascade", "--backbone", "flow", "--folds", "2",
                 "--bootstrap", "0", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["policies"]["cascade"] and summary["recommended"] == []
