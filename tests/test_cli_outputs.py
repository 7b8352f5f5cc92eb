"""A command that writes a folder (table, analyze, fit, synth, localize, demo) leaves --out as it was when it fails,
and replaces its contents, never mixing two runs, when it succeeds (cli.main + condsel._io.replacing_dir)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from condsel.cli import main
from condsel.datasets.ucf101 import load_ucf101_split1

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_table(tmp_path_factory):
    """200 real UCF101 split-1 videos without their groups, three models, with costs."""
    table = load_ucf101_split1().select_models(["mv", "flow", "iframe"]).with_costs({"mv": 44.36, "flow": 44.36, "iframe": 287.79})
    table = table.subset(np.random.default_rng(0).permutation(table.num_samples)[:200])
    table.groups = None  # videos, not UCF101 groups, fill the folds
    path = tmp_path_factory.mktemp("tables") / "small.npz"
    table.save(path)
    return path


def _quick(small_table, out):
    return ["table", "--table", str(small_table), "--policies", "cascade", "--backbone", "flow", "--folds", "2",
            "--bootstrap", "0", "--workers", "1", "--out", str(out)]


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("bad", [["--backbone", "Small"], ["--folds", "700"], ["--models", "mv"]])
def test_a_failed_table_leaves_no_new_folder(small_table, tmp_path, capsys, bad):
    out = tmp_path / "new"
    argv = _quick(small_table, out)
    argv[argv.index("--backbone"):argv.index("--backbone") + 2] = []
    assert main([*argv, *bad]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_failed_run_leaves_an_existing_folder_byte_for_byte(small_table, tmp_path):
    out = tmp_path / "run"
    assert main(_quick(small_table, out)) == 0
    (out / "report.html").write_text("an earlier report")
    before = _snapshot(out)
    assert main([*_quick(small_table, out), "--backbone", "Small"]) == 2
    assert main(["analyze", "per-class", "--table", str(tmp_path / "missing.npz"), "--out", str(out)]) == 2
    assert main(["fit", "--pool", str(tmp_path / "missing.toml"), "--store", str(tmp_path), "--out", str(out)]) == 2
    assert _snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no hidden leftovers beside it


def test_a_successful_run_replaces_the_folder(small_table, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "report.html").write_text("an earlier report")
    (out / "provenance.json").write_text(json.dumps({"format": "condsel-provenance/1", "commands": ["condsel table --old"]}))
    assert main(_quick(small_table, out)) == 0
    assert sorted(p.name for p in out.iterdir()) == ["curve.png", "provenance.json", "summary.json", "table.npz"]
    commands = json.loads((out / "provenance.json").read_text())["commands"]
    assert len(commands) == 1 and commands[0].startswith("condsel table --table")
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_an_input_inside_the_folder_it_replaces_is_refused(small_table, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_quick(small_table, out)) == 0
    before = _snapshot(out)
    assert main(["table", "--table", str(out / "table.npz"), "--backbone", "flow", "--out", str(out)]) == 2
    assert "--table" in capsys.readouterr().err and _snapshot(out) == before


def test_an_interrupted_run_puts_the_folder_back(small_table, tmp_path, monkeypatch):
    import condsel.report.plots as plots

    out = tmp_path / "run"
    assert main(_quick(small_table, out)) == 0
    before = _snapshot(out)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "plot_curves", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(_quick(small_table, out))
    assert _snapshot(out) == before and [p.name for p in tmp_path.iterdir()] == ["run"]
