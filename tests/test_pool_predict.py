"""``condsel predict`` and conditional inference on real files, with a run directory made here.

The pool has the default architectures with random weights and the selector is
fitted on random targets: predictions are meaningless, the pipeline is not.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from condsel.cli import main
from condsel.selection.curves import choose_models, selection_costs
from condsel.synthetic.pipeline import SYNTHETIC_POOL, calibration_curve, default_threshold
from condsel.selection.metrics import topk_correct
from condsel.pool.inference import pool_table, run_member
from condsel.pool.latency import format_latency, measure_latency
from condsel.pool.config import build_pool
from condsel.pool.predict import predict_batched, predict_video
from condsel.pool.run_dir import load_run, save_run
from condsel.selection.selector import Selector
from condsel.synthetic import CLASS_NAMES, generate
from condsel.video.decode import decode_video

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
KINETICS = DATA / "videos" / "kinetics_arm_wrestling.mp4"
AVI = DATA / "videos" / "unlabelled_test.avi"


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    torch.manual_seed(0)
    members = list(SYNTHETIC_POOL.members)
    models = build_pool(SYNTHETIC_POOL, random_weights=True)
    gflops = SYNTHETIC_POOL.gflops
    order = [m.name for m in members]
    data = generate(root / "videos", 12, seed=0)
    short_side = SYNTHETIC_POOL.decode_short_side
    videos = [decode_video(p, short_side=short_side) for p in data.paths]
    table = pool_table(members, models, videos, [p.name for p in data.paths], data.labels, list(CLASS_NAMES))
    # random affinity targets, but a real fit on the backbone's real outputs
    targets = np.eye(3)[np.random.default_rng(0).integers(0, 3, 12)]
    selector = Selector(hidden=(16,), epochs=3, inputs="probs")
    selector.fit(selector.features(table.logits[order[0]]), targets)
    thresholds = np.linspace(0, 1, 101)
    calibration = calibration_curve(selector, table, order, thresholds)
    run_dir = save_run(root / "run", SYNTHETIC_POOL, models, order, selector, list(CLASS_NAMES), 0.5, calibration)
    return {"run": run_dir, "table": table, "selector": selector, "calibration": calibration, "thresholds": thresholds, "data": data}


def _predict(capsys, *args) -> tuple[int, list[dict]]:
    code = main(["predict", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_predict_runs_on_the_real_kinetics_mp4_and_an_avi(material, capsys):
    code, results = _predict(capsys, "--run", material["run"], KINETICS, AVI)
    assert code == 0
    run = load_run(material["run"])
    assert [r["video"] for r in results] == [str(KINETICS), str(AVI)]
    for r in results:
        assert set(r) == {"video", "label", "score", "model", "gflops", "seconds"}
        assert r["label"] in CLASS_NAMES and 0 < r["score"] <= 1 and r["seconds"] > 0
        assert r["gflops"] == pytest.approx(run.selection_costs[run.order.index(r["model"])])


def test_the_choice_follows_the_selector_and_the_threshold(material):
    """The model predict picks is the one choose_models picks from the backbone's outputs on the same frames."""
    run = load_run(material["run"])
    video = decode_video(KINETICS, short_side=run.decode_short_side)  # every frame: sampling must pick the same ones
    logits = run_member(run.members[run.backbone], run.models[run.backbone], [video]).logits
    proba = run.selector.predict_proba(run.selector.features(logits))
    for threshold in (0.0, 0.3, 0.6, 1.0):
        assert predict_video(run, KINETICS, threshold).model == run.order[int(choose_models(proba, threshold)[0])]
    assert predict_video(run, KINETICS, 0.0).model == run.backbone


def test_bad_videos_get_error_entries_and_the_others_go_on(material, capsys, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(KINETICS.read_bytes()[:100_000])
    text = tmp_path / "notes.avi"
    text.write_text("not a video\n" * 20)
    missing = tmp_path / "missing.mp4"
    code, results = _predict(capsys, "--run", material["run"], empty, KINETICS, truncated, text, missing, AVI)
    assert code == 1
    assert [r["video"] for r in results] == [str(p) for p in (empty, KINETICS, truncated, text, missing, AVI)]
    for r, reason in zip([results[i] for i in (0, 2, 3, 4)], ["empty file", "not a readable video", "not a readable video", "file not found"]):
        assert set(r) == {"video", "error"} and r["video"] in r["error"] and reason in r["error"]
    assert "label" in results[1] and "label" in results[5]


def test_budget_and_threshold_options(material, capsys):
    run = load_run(material["run"])
    backbone_cost = run.selection_costs[0]
    code, results = _predict(capsys, "--run", material["run"], KINETICS, "--threshold", "0")
    assert code == 0 and results[0]["model"] == run.backbone and results[0]["gflops"] == pytest.approx(backbone_cost)
    top = max(p["gflops"] for p in run.calibration)
    assert run.threshold_for_budget(top) == max(run.calibration, key=lambda p: (p["gflops"], -p["threshold"]))["threshold"]
    code, _ = _predict(capsys, "--run", material["run"], KINETICS, "--budget", str(top))
    assert code == 0
    assert main(["predict", "--run", str(material["run"]), str(KINETICS), "--budget", str(backbone_cost / 2)]) == 2
    assert "below the cheapest operating point" in capsys.readouterr().err
    assert main(["predict", "--run", str(material["run"]), str(KINETICS), "--threshold", "1.5"]) == 2
    assert main(["predict", "--run", str(material["run"].parent), str(KINETICS)]) == 2


def test_calibration_curve_matches_a_loop_over_thresholds(material):
    table, selector, thresholds = material["table"], material["selector"], material["thresholds"]
    order = SYNTHETIC_POOL.names
    proba = selector.predict_proba(selector.features(table.logits[order[0]]))
    costs = selection_costs(np.array([table.gflops[m] for m in order]), selector.gflops())
    hits = np.stack([topk_correct(table.logits[m], table.labels, 1) for m in order], axis=1)
    curve = {p["threshold"]: p for p in material["calibration"]}
    last = None
    for t in thresholds:
        picks = choose_models(proba, t)
        point = curve.get(float(t), last)
        assert point["gflops"] == pytest.approx(costs[picks].mean())
        assert point["top1"] == pytest.approx(100 * hits[np.arange(len(picks)), picks].mean())
        last = point


def test_default_threshold_is_the_cheapest_point_reaching_the_target():
    curve = [
        {"threshold": 0.0, "gflops": 1.0, "top1": 50.0},
        {"threshold": 0.3, "gflops": 2.0, "top1": 71.0},
        {"threshold": 0.6, "gflops": 3.0, "top1": 72.0},
        {"threshold": 0.9, "gflops": 4.0, "top1": 70.0},
    ]
    assert default_threshold(curve, 70.5) == 0.3
    assert default_threshold(curve, 72.0) == 0.6
    assert default_threshold(curve, 80.0) == 0.6  # unreachable: the most accurate point


def test_batched_and_load_per_selection_modes_give_the_same_answers(material):
    run = load_run(material["run"])
    paths = material["data"].paths[:6]
    one_by_one = [predict_video(run, p, 0.5) for p in paths]
    loading = [predict_video(run, p, 0.5, load_chosen=True) for p in paths]
    batched = predict_batched(run, paths, 0.5)
    for a, b, c in zip(one_by_one, loading, batched):
        assert a.model == b.model == c.model and a.label == b.label == c.label
        assert a.score == pytest.approx(b.score, abs=1e-5) and a.score == pytest.approx(c.score, abs=1e-5)


def test_latency_block_reports_every_mode(material):
    run = load_run(material["run"])
    latency = measure_latency(run, material["data"].paths[:4], 0.5, threads=1, batch_size=2, warmup=1, sweep=[0.0])
    assert latency["largest"]["model"] == "conv3d_l" and latency["largest"]["gflops"] == pytest.approx(run.gflops["conv3d_l"])
    for mode in ("largest", "selector", "selector_load_per_selection", "largest_batched", "selector_batched"):
        assert latency[mode]["seconds_per_video"] > 0
    assert latency["speedup_ratio"] == pytest.approx(latency["wall_speedup"] / latency["gflops_speedup"])
    assert sum(latency["chosen_share"].values()) == pytest.approx(1.0)
    # threshold 0 keeps every video on the backbone
    cheapest = latency["operating_points"][0]
    assert cheapest["threshold"] == 0.0 and cheapest["gflops"] == pytest.approx(run.selection_costs[0])
    assert len(latency["operating_points"]) == 2 and latency["overhead_fit"]["seconds_per_gflop"] > 0
    assert torch.get_num_threads() >= 1 and "speedup" in format_latency(latency)
