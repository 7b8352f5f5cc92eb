"""``condsel predict`` and conditional inference on real files, with a run directory made here.

The pool has the default architectures with random weights and the policy is
fitted on their outputs: predictions are meaningless, the pipeline is not.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import FIXTURES, synthetic_pool_videos

from condsel.cli import main
from condsel.pool.inference import pool_table, run_member
from condsel.pool.latency import measure_latency
from condsel.report.text import format_latency
from condsel.pool.predict import execute, predict_batched, predict_video
from condsel.pool.run_dir import load_run, point_within_budget, save_run
from condsel.selection.method.policies import CascadePolicy, SelectorPolicy
from condsel.workflows.demo import SYNTHETIC_POOL
from condsel.synthetic import CLASS_NAMES
from condsel.video.decode import decode_video

KINETICS = FIXTURES / "videos" / "arm_wrestling_cut.mp4"
AVI = FIXTURES / "videos" / "unlabelled_test_cut.avi"


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    members = list(SYNTHETIC_POOL.members)
    models, data, videos = synthetic_pool_videos(root, 12)
    table = pool_table(members, models, videos, [p.name for p in data.paths], data.labels, list(CLASS_NAMES))
    # random weights, but a real fit on the backbone's real outputs
    policy = SelectorPolicy(backbone="frame2d", selector_input="probs", hidden=(16,), epochs=3).fit(table)
    calibration = policy.sweep(table)
    run_dir = save_run(root / "run", SYNTHETIC_POOL, policy, list(CLASS_NAMES), 0.5, calibration, "logits", models=models)
    return {"run": run_dir, "table": table, "policy": policy, "calibration": calibration, "data": data}


def _predict(capsys, *args) -> tuple[int, list[dict]]:
    code = main(["predict", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out)


def _cost(run, members) -> float:
    return sum(run.gflops[m] for m in members) + run.policy.overhead_gflops_


def test_predict_runs_on_the_real_kinetics_mp4_and_an_avi(material, capsys):
    code, results = _predict(capsys, "--run", material["run"], KINETICS, AVI)
    assert code == 0
    run = load_run(material["run"])
    assert [r["video"] for r in results] == [str(KINETICS), str(AVI)]
    for r in results:
        assert set(r) == {"video", "label", "score", "model", "members", "gflops", "seconds", "random_weights"}
        assert r["label"] in CLASS_NAMES and 0 < r["score"] <= 1 and r["seconds"] > 0
        assert r["members"][0] == run.backbone and r["model"] == r["members"][-1] and r["random_weights"] is False
        assert r["gflops"] == pytest.approx(_cost(run, r["members"]))


def test_the_choice_follows_the_policy_and_the_threshold(material):
    """The model predict picks is the one the policy picks from the backbone's outputs on the same frames."""
    run = load_run(material["run"])
    video = decode_video(KINETICS, short_side=run.decode_short_side)  # every frame: sampling must pick the same ones
    logits = run_member(run.members[run.backbone], run.models[run.backbone], [video]).logits[0]
    for threshold in (0.0, 0.3, 0.6, 1.0):
        expected = run.policy.next_members({run.backbone: logits}, threshold) or [run.backbone]
        assert predict_video(run, KINETICS, threshold).model == expected[0]
    assert predict_video(run, KINETICS, 0.0).model == run.backbone


def test_execute_drives_any_policy_like_its_offline_routing(material):
    """execute on stored outputs runs exactly route's members and gives its scores, for a selector and a cascade."""
    table = material["table"]
    cascade = CascadePolicy(members=["frame2d", "conv3d_s", "conv3d_l"]).fit(table)
    for policy in (material["policy"], cascade):
        for threshold in (0.2, 0.7):
            routing = policy.route(table, threshold)
            for i in range(table.num_samples):
                calls = []

                def run_members(names, i=i):
                    calls.append(list(names))
                    return {n: table.logits[n][i] for n in names}

                scores, ran, gflops = execute(policy, run_members, threshold)
                assert sorted(ran) == sorted(np.asarray(policy.members_)[routing.ran[i]].tolist())
                np.testing.assert_allclose(scores, routing.scores[i], atol=1e-6)
                assert gflops == pytest.approx(routing.gflops[i]) and calls[0] == [policy.members_[0]]


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
    backbone_cost = _cost(run, [run.backbone])
    code, results = _predict(capsys, "--run", material["run"], KINETICS, "--threshold", "0")
    assert code == 0 and results[0]["model"] == run.backbone and results[0]["gflops"] == pytest.approx(backbone_cost)
    top = max(p["gflops"] for p in run.calibration)
    best = max(p["top1"] for p in run.calibration)
    chosen = run.threshold_for_budget(top)
    assert min((p["gflops"], p["threshold"]) for p in run.calibration if p["top1"] == best) == next(
        (p["gflops"], p["threshold"]) for p in run.calibration if p["threshold"] == chosen)
    code, _ = _predict(capsys, "--run", material["run"], KINETICS, "--budget", str(top))
    assert code == 0
    assert main(["predict", "--run", str(material["run"]), str(KINETICS), "--budget", str(backbone_cost / 2)]) == 2
    assert "below the cheapest operating point" in capsys.readouterr().err
    assert main(["predict", "--run", str(material["run"]), str(KINETICS), "--threshold", "1.5"]) == 2
    assert main(["predict", "--run", str(material["run"].parent), str(KINETICS)]) == 2


def test_budget_picks_the_most_accurate_point_within_it():
    curve = [
        {"threshold": 0.0, "gflops": 1.0, "top1": 50.0},
        {"threshold": 0.3, "gflops": 2.0, "top1": 72.0},
        {"threshold": 0.6, "gflops": 3.0, "top1": 72.0},
        {"threshold": 0.9, "gflops": 4.0, "top1": 70.0},
    ]
    assert point_within_budget(curve, 1.5)["threshold"] == 0.0
    assert point_within_budget(curve, 3.5)["threshold"] == 0.3  # as accurate as 0.6 and cheaper
    assert point_within_budget(curve, 10.0)["threshold"] == 0.3
    with pytest.raises(ValueError, match="below the cheapest operating point"):
        point_within_budget(curve, 0.5)


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
    assert cheapest["threshold"] == 0.0 and cheapest["gflops"] == pytest.approx(_cost(run, [run.backbone]))
    assert len(latency["operating_points"]) == 2 and latency["overhead_fit"]["seconds_per_gflop"] > 0
    assert torch.get_num_threads() >= 1 and "speedup" in format_latency(latency)
