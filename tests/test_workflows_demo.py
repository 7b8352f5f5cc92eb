"""The demo's synthetic stages, chained on a small benchmark: what each stage hands on is what the next reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import condsel.workflows.demo as demo
from condsel.pool.run_dir import load_run
from condsel.selection.data.table import PredictionTable
from condsel.synthetic import CLASS_NAMES


@pytest.mark.slow
def test_stages_write_a_run_that_predict_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_VIDEOS", 60)
    monkeypatch.setattr(demo, "DEMO_EPOCHS", {"frame2d": 1, "conv3d_s": 1, "conv3d_l": 1})
    monkeypatch.setattr(demo, "LATENCY_VIDEOS", 3)
    summary = demo.run_synthetic_demo(tmp_path, seed=0, progress=False)

    stages = ["generate", "decode", "train_frame2d", "train_conv3d_s", "train_conv3d_l", "extract", "selector",
              "latency", "report", "total"]
    assert list(summary.synthetic["seconds"]) == stages
    splits = summary.synthetic["splits"]
    assert sum(splits.values()) == 60 and min(splits.values()) > 0
    test = PredictionTable.load(tmp_path / "test_table.npz")
    assert test.num_samples == splits["test"]
    # the single models' held-out top-1 is recomputed from the test table the extract stage wrote
    for m, row in summary.models.items():
        assert row["top1"] == pytest.approx(100 * np.mean(test.logits[m].argmax(1) == test.labels))
    run = load_run(tmp_path / "run")
    assert run.order == summary.pool and summary.latency["videos"] == 3
    assert summary.latency["selector"]["threshold"] == pytest.approx(run.threshold)
    assert json.loads((tmp_path / "summary.json").read_text())["synthetic"]["seed"] == 0
    # the README's `condsel predict --run demo_out/synthetic/run VIDEO` names a video this stage writes
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    video = re.search(r"condsel predict --run demo_out/synthetic/run (\S+)", readme).group(1)
    assert video.startswith("demo_out/synthetic/") and (tmp_path / video.removeprefix("demo_out/synthetic/")).is_file()


def test_per_class_top1_by_hand():
    """Two videos a class; both right for the first class, one of two for every other."""
    k = len(CLASS_NAMES)
    labels = np.repeat(np.arange(k), 2)
    predicted = labels.copy()
    predicted[3::2] = (labels[3::2] + 1) % k  # the second video of classes 1.. is wrong
    table = PredictionTable([f"v{i}" for i in range(2 * k)], labels, {"m": np.eye(k, dtype=np.float32)[predicted]})
    expected = {c: (100.0 if i == 0 else 50.0) for i, c in enumerate(CLASS_NAMES)}
    assert demo.per_class_top1(table, ["m"]) == {"m": expected}
