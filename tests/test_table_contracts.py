"""What a user meets on `condsel table` and the Python API (issue 27): one rule per hyperparameter range,
--folds and other bad input refused before any output, honest multi-label headlines, budgets above every setting."""

from __future__ import annotations

import json

import numpy as np
import pytest

from condsel.cli import main
from condsel.selection.data.table import PredictionTable
from condsel.selection.evaluation.comparison import cross_validate
from condsel.selection.evaluation.evaluate import SelectionConfig
from condsel.selection.method.policies import CascadePolicy, EnsembleSelectorPolicy, SelectorPolicy, StaticPolicy

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _single_label(n=300, c=5, seed=0) -> PredictionTable:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    logits = {}
    for name, noise in (("small", 2.5), ("large", 0.8)):
        z = rng.normal(size=(n, c)) * noise
        z[np.arange(n), labels] += 2.0
        logits[name] = z.astype(np.float32)
    return PredictionTable(np.array([f"vid_{i:04d}" for i in range(n)]), labels, logits, gflops={"small": 2.0, "large": 80.0})


def _multi_label(n=300, c=8, seed=0) -> PredictionTable:
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, c)) < 0.25).astype(np.int64)
    labels[np.arange(n), rng.integers(0, c, n)] = 1
    logits = {name: (3 * labels - 1.5 + rng.normal(size=(n, c)) * noise).astype(np.float32) for name, noise in (("small", 2.0), ("large", 0.6))}
    return PredictionTable(np.array([f"v{i}" for i in range(n)]), labels, logits, gflops={"small": 1.0, "large": 12.0})


@pytest.fixture(scope="module")
def table_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("t") / "table.npz"
    _single_label().save(path)
    return path


# --- item 10: the API checks a hyperparameter with the CLI's range and words ----------------------------

@pytest.mark.parametrize("policy, flag, value, rule", [
    (SelectorPolicy(backbone="small", alpha=-1), "alpha", "-1", ">= 0"),
    (SelectorPolicy(backbone="small", temperature=0.0), "temperature", "0", "> 0"),
    (SelectorPolicy(backbone="small", seed=-2), "seed", "-2", ">= 0"),
    (EnsembleSelectorPolicy(alpha=-0.5), "alpha", "-0.5", ">= 0"),
])
def test_fit_refuses_what_the_flag_refuses_in_the_same_words(policy, flag, value, rule, table_file, tmp_path, capsys):
    with pytest.raises(ValueError, match=f"\\({flag}\\): must be {rule}, got {value}"):
        policy.fit(_single_label())
    assert main(["table", "--table", str(table_file), f"--{flag}", value, "--out", str(tmp_path / "o")]) == 2
    assert f"argument --{flag}: must be {rule}, got {value}" in capsys.readouterr().err


@pytest.mark.parametrize("policy, message", [
    (CascadePolicy(grid=1), r"CascadePolicy\(grid\): must be >= 2, got 1"),
    (StaticPolicy(max_size=0), r"StaticPolicy\(max_size\): must be >= 1, got 0"),
    (SelectorPolicy(backbone="small", epochs=2.5), r"SelectorPolicy\(epochs\): must be an integer >= 1, got 2.5"),
    (SelectorPolicy(backbone="small", lr=float("nan")), r"SelectorPolicy\(lr\): must be a finite number > 0, got nan"),
])
def test_fit_refuses_out_of_range_hyperparameters(policy, message):
    with pytest.raises(ValueError, match=message):
        policy.fit(_single_label())


# --- item 11: flag ranges and --folds against the table --------------------------------------------------

def test_folds_larger_than_the_videos_fail_before_any_output(table_file, tmp_path, capsys):
    assert main(["table", "--table", str(table_file), "--backbone", "small", "--folds", "700", "--out", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == "condsel table: error: --folds 700: 300 videos cannot fill 700 folds; each fold needs at least one video"


def test_a_wrong_backbone_fails_before_any_output(table_file, tmp_path, capsys):
    assert main(["table", "--table", str(table_file), "--backbone", "Small", "--out", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "--backbone 'Small'" in captured.err


@pytest.mark.parametrize("argv, accepted", [(["--workers", "0"], False), (["--workers", "1"], True),
                                            (["--bootstrap", "0"], True), (["--bootstrap", "-1"], False)])
def test_flag_ranges_are_those_the_readme_states(argv, accepted):
    from condsel.cli import build_parser

    readme = (__import__("pathlib").Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "fitting processes (`table --workers`) ≥ 1" in readme and "bootstrap replicates ≥ 0" in readme
    parser = build_parser()
    if accepted:
        parser.parse_args(["table", "--bundled", "ucf101-split1", "--out", "o", *argv])
    else:
        with pytest.raises(SystemExit):
            parser.parse_args(["table", "--bundled", "ucf101-split1", "--out", "o", *argv])


# --- item 12: cross_validate takes any policy, with defaults ---------------------------------------------

def test_cross_validate_takes_a_cascade_with_default_config():
    summary = cross_validate(CascadePolicy(), _single_label(), SelectionConfig(folds=3, bootstrap=0, random_seeds=2), workers=1)
    assert list(summary["policies"]) == ["cascade"] and summary["backbone_chosen"]  # the paper's selector beside it, backbone chosen on training folds
    front = summary["policies"]["cascade"]
    assert min(p["gflops"] for p in front) == pytest.approx(2.0) and max(p["top1"] for p in front) > 0


def test_cross_validate_defaults_config_and_workers(monkeypatch):
    import inspect

    import condsel.selection.evaluation.comparison as comparison

    signature = inspect.signature(cross_validate)
    assert signature.parameters["config"].default is None and signature.parameters["workers"].default is None
    seen = {}
    monkeypatch.setattr(comparison, "every_core", lambda: seen.setdefault("cores", 3))
    monkeypatch.setattr(comparison, "fit_all", lambda *a, **k: (_ for _ in ()).throw(RuntimeError(k["workers"])))
    with pytest.raises(RuntimeError, match="^3$"):
        cross_validate(SelectorPolicy(backbone="small"), _single_label())
    assert seen == {"cores": 3}


# --- item 3: no impossible gap-closed for mAP ------------------------------------------------------------

def test_multilabel_summary_reports_no_oracle_gap_for_map():
    from condsel.selection.evaluation.document import SummaryDocument
    from condsel.selection.evaluation.text_summary import format_summary

    summary = cross_validate(SelectorPolicy(backbone="small", epochs=2), _multi_label(), SelectionConfig(folds=3, bootstrap=0, random_seeds=2), workers=1)
    assert summary["metric"] == "map" and summary["summary"]["oracle_gap_closed"] is None
    assert "ci95" not in summary["summary"]  # documented: bootstrap CIs are single-label only
    text = format_summary(SummaryDocument.from_json(summary))
    assert "closed: n/a for mAP (a per-sample oracle does not bound mAP)" in text



def test_a_figure_that_is_not_defined_prints_no_interval_beside_it():
    """Bootstrap replicates may define a figure the full sample does not (a front at one cost): no CI beside n/a."""
    from condsel.selection.evaluation.document import SummaryDocument
    from condsel.selection.evaluation.text_summary import format_summary

    summary = cross_validate(SelectorPolicy(backbone="small", epochs=2), _single_label(), SelectionConfig(folds=3, bootstrap=20), workers=1)
    assert summary["summary"]["ci95"]["oracle_gap_closed"]["low"] is not None
    closed_line = next(line for line in format_summary(SummaryDocument.from_json(summary)).splitlines() if "closed:" in line)
    assert "[95% CI" in closed_line  # defined: its interval is shown
    summary["summary"]["oracle_gap_closed"] = None
    closed_line = next(line for line in format_summary(SummaryDocument.from_json(summary)).splitlines() if "closed:" in line)
    assert closed_line.endswith("closed: n/a")

# --- item 4: a budget above every setting says so; the two blocks are named -----------------------------

def test_a_budget_above_the_costliest_setting_is_a_warning(table_file, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["table", "--table", str(table_file), "--backbone", "small", "--policies", "cascade", "--folds", "3",
                 "--bootstrap", "0", "--workers", "1", "--budget", "100000", "--budget", "40", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    costliest = max(p["gflops"] for front in [summary["curves"]["selector"], *summary["policies"].values(), summary["static"]] for p in front)
    assert costliest < 100000 and len(summary["warnings"]) == 1
    assert summary["warnings"][0].startswith(f"budget 100000 GFLOPs is above the costliest setting ({costliest:.4g} GFLOPs)")
    printed = capsys.readouterr().out
    assert f"warning: {summary['warnings'][0]}" in printed
    assert "recommended front: what each budget gets" in printed and "this selector alone at budget 40.0 GFLOPs" in printed


# --- item 14: console and plots ---------------------------------------------------------------------------

def test_progress_is_a_line_per_stage_when_stderr_is_not_a_terminal(table_file, tmp_path, capsys):
    from condsel._progress import progress_bar

    assert list(progress_bar(range(500), desc="decode", unit="video")) == list(range(500))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "decode: started (500 video)" and lines[1].startswith("decode: done, 500 video in ") and len(lines) == 2
    assert main(["table", "--table", str(table_file), "--backbone", "small", "--policies", "cascade", "--folds", "3",
                 "--bootstrap", "0", "--workers", "1", "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "policy fits: started" in err and len(err) < 2000


def _figure_of(draw, monkeypatch):
    import condsel.report.plots as plots

    captured = {}
    monkeypatch.setattr(plots, "save", lambda fig, path: captured.setdefault("fig", fig))
    draw(plots)
    fig = captured["fig"]
    fig.canvas.draw()
    return fig


def _legend_below_everything_drawn(fig) -> bool:
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    if not fig.legends or ax.get_legend() is not None:
        return False
    return fig.legends[0].get_window_extent(renderer).y1 <= ax.get_tightbbox(renderer).y0 + 1


def test_curve_legend_covers_no_data_and_no_threshold_label(monkeypatch, tmp_path):
    from condsel.selection.evaluation.document import SummaryDocument

    summary = cross_validate(SelectorPolicy(backbone="small", epochs=1), _single_label(), SelectionConfig(folds=3, bootstrap=0, random_seeds=2), workers=1)
    doc = SummaryDocument.from_json(summary)
    fig = _figure_of(lambda plots: plots.plot_curves(doc, tmp_path / "c.png", title="t"), monkeypatch)
    assert _legend_below_everything_drawn(fig)
    point = {"threshold": 0.5, "gflops": 30.0, "top1": 60.0}
    curve = [{"threshold": t, "gflops": 2 + 78 * t, "top1": 40 + 30 * t} for t in np.linspace(0, 1, 11)]
    fig = _figure_of(lambda plots: plots.plot_operating_curve(curve, {"small": {"gflops": 2, "top1": 40}}, point, tmp_path / "o.png", "selector"), monkeypatch)
    assert _legend_below_everything_drawn(fig)


def test_zoo_columns_line_up(capsys, monkeypatch):
    """Rows as `condsel zoo` lists them (FLOP counting stubbed: the zoo's own tests count them), a 16-character name among them."""
    from condsel import models

    rows = {"bninception_flow": (1, 224, 1, 10, 2.307, None), "x3d_xs": (4, 160, 12, 3, 0.605, 0.6), "x3d_l": (16, 312, 5, 3, 18.368, 18.37)}
    monkeypatch.setattr(models, "list_models", lambda: list(rows))
    monkeypatch.setattr(models, "describe", lambda name: dict(zip(("frames", "crop", "stride", "channels", "gflops", "published_gflops"), rows[name]), name=name))
    assert main(["zoo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("name"))
    rows = [line for line in lines[header + 1:] if line and not line.startswith("Frame models")]
    starts = [lines[header].index(h) for h in ("input", "GFLOPs")]
    ends = [lines[header].index("published") + len("published")]
    for row in rows:
        assert row[starts[0] - 1] == " " and row[starts[0] - 2] == " "  # the name column never runs into the input column
        assert len(row) == ends[0]  # right-aligned numbers end under their header
