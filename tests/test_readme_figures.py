"""The README's demo figures are the figures of a demo run (tools/readme_figures.py), not typed by hand.

The demo takes 2-3 min on 2 cores, too long for the fast lane, so the fast test
reads ``tests/data/demo_figures.json``: the figures `tools/readme_figures.py
DEMO --save` extracted from the seed-0 demo run that wrote the README block.
``python tools/readme_figures.py DEMO --check README.md`` compares a fresh run.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("readme_figures", ROOT / "tools" / "readme_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recorded():
    return json.loads((ROOT / "tests" / "data" / "demo_figures.json").read_text())


def test_readme_block_is_the_recorded_demo_run(tool, recorded):
    assert tool.check((ROOT / "README.md").read_text(), recorded) == []


def test_a_typed_figure_off_the_run_is_named(tool, recorded):
    readme = (ROOT / "README.md").read_text()
    stale = readme.replace(f"({recorded['syn_best_top1']:.2f}%)", "(93.89%)")
    assert stale != readme
    assert tool.check(stale, recorded) == [f"syn_best_top1: README 93.89, run {recorded['syn_best_top1']}"]


def test_latency_is_checked_within_its_stated_noise(tool, recorded):
    readme = (ROOT / "README.md").read_text()
    shown = f"{recorded['largest_ms']:.1f} ms/video"
    assert tool.check(readme.replace(shown, f"{1.3 * recorded['largest_ms']:.1f} ms/video"), recorded) == []
    assert [p.split(":")[0] for p in tool.check(readme.replace(shown, f"{3 * recorded['largest_ms']:.1f} ms/video"), recorded)] == ["largest_ms"]


def test_figures_are_read_from_the_demo_summaries(tool, tmp_path, recorded):
    """A hand-made demo folder: the cheapest recommended point above the best single model, the CI ends, ms from seconds."""
    (tmp_path / "ucf101").mkdir()
    (tmp_path / "synthetic").mkdir()
    ucf = {"summary": {"best_model": "big"}, "models": {"big": {"top1": 80.0, "gflops": 300.0}},
           "recommended": [{"top1": 79.0, "gflops": 40.0}, {"top1": 81.0, "gflops": 60.0}, {"top1": 85.0, "gflops": 200.0}]}
    ci = {"gflops_ratio_to_match_best": {"low": 0.1, "high": 0.4}, "oracle_gap_closed": {"low": 0.2, "high": 0.6}}
    syn = {"summary": {"best_top1": 90.0, "gflops_ratio_to_match_best": 0.25, "oracle_gap_closed": 0.4, "ci95": ci},
           "latency": {"largest": {"seconds_per_video": 0.02}, "selector": {"seconds_per_video": 0.005},
                       "wall_speedup": 4.0, "gflops_speedup": 5.0, "speedup_ratio": 0.8}}
    (tmp_path / "ucf101" / "summary.json").write_text(json.dumps(ucf))
    (tmp_path / "synthetic" / "summary.json").write_text(json.dumps(syn))
    values = tool.figures(tmp_path)
    assert (values["ucf_cheap_top1"], values["ucf_cheap_gflops"], values["ucf_top_top1"]) == (81.0, 60.0, 85.0)
    assert values["largest_ms"] == pytest.approx(20.0) and values["syn_gap_high"] == 0.6
    assert set(values) == set(recorded)
