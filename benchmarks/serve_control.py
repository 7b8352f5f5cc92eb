"""Benchmark of serve's budget controller and load shedding, on 127.0.0.1, with bounded request counts.

Usage:
    python benchmarks/serve_control.py [--out serve_control.json] [--requests 120] [--seed 0]

A fitted synthetic pool, built here in about a minute: ``condsel demo``'s
three synthetic nets (frame2d backbone, conv3d_s, conv3d_l on 3x3 views),
trained briefly on 240 rendered videos, and the paper's selector fitted on a
*calibration* set whose classes are mostly the first six. Traffic is drawn
from the other classes mostly, so the selector's confidences, and the
realised cost at a threshold, drift from calibration.

(a) Drift: the fixed threshold is the calibration point nearest the
    geometric mean of the cheapest and costliest points, and the target is
    its calibration cost (so the fixed threshold meets the target exactly on
    calibration videos); the controller (``--target-gflops``, ``--window``)
    starts from the same threshold. Both serve the same traffic sequence.
(b) Load step: open-loop clients, each sending a request every
    ``1 / rate`` s; 1x -> 4x -> 1x clients. The fixed threshold is the
    calibration point nearest half the costliest member's cost (most videos
    reach it); ``--slo-ms`` is set to 4 x the 1x p50 of the fixed run.
    Per phase: p50/p99 latency at the client, throughput, the share of
    videos reaching the costliest member, the mean threshold, and the
    expected top-1 of the calibration point in use (a proxy for accuracy
    under shedding: traffic labels are not used online).
(c) Cost agreement: per member and for the policy, GFLOPs (counted),
    ms (``condsel profile``'s forward medians) and serve's wall seconds per
    request at 1x load (decoding and HTTP included).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from condsel.pool.inference import pool_table
from condsel.pool.profile import profile_pool
from condsel.pool.run_dir import load_run, save_run
from condsel.pool.train import TrainConfig, train_member
from condsel.selection.method.policies import SelectorPolicy
from condsel.serve.client import post_video
from condsel.serve.config import ServeOptions
from condsel.serve.control import OperatingCurve
from condsel.serve.routing import RunPool, run_member_loaders
from condsel.synthetic import CLASS_NAMES, generate
from condsel.workflows.demo import SYNTHETIC_POOL, decode_all

PORT = 8766
EPOCHS = {"frame2d": 3, "conv3d_s": 3, "conv3d_l": 4}
# 300 videos outside the train split: ~150 of traffic, so one video changing route moves the mean by < 1/150 of the
# costliest member's cost (a smaller traffic set makes the realised cost too coarse a function of the threshold)
VIDEOS, TRAIN_VIDEOS = 600, 240
log = logging.getLogger("serve_control")


def build(root: Path, seed: int) -> dict:
    """Render, train, fit the selector on the calibration mix; the run directory, the traffic videos and the ms costs."""
    data = generate(root / "videos", VIDEOS, seed=seed)
    videos = decode_all(data.paths, SYNTHETIC_POOL.decode_short_side, False)
    train = np.flatnonzero(data.splits == "train")[:TRAIN_VIDEOS]
    torch.manual_seed(seed)
    models = {m.name: train_member(m, [videos[j] for j in train], data.labels[train], TrainConfig(epochs=EPOCHS[m.name]), seed=seed)
              for m in SYNTHETIC_POOL.members}
    rest = np.flatnonzero(data.splits != "train")  # videos of the train split beyond TRAIN_VIDEOS are not used
    first_half = data.labels[rest] < len(CLASS_NAMES) // 2
    # calibration: every video of classes 0-5 and one in four of 6-11; traffic: the other videos of 6-11 and one in four of 0-5
    a, b = rest[first_half], rest[~first_half]
    calibration = np.sort(np.concatenate([a[1::4], a[2::4], a[3::4], b[::4]]))
    traffic = np.sort(np.concatenate([b[1::4], b[2::4], b[3::4], a[::4]]))
    tables = {name: pool_table(list(SYNTHETIC_POOL.members), models, [videos[j] for j in idx], [data.paths[j].name for j in idx],
                               data.labels[idx], list(CLASS_NAMES)) for name, idx in (("calibration", calibration), ("traffic", traffic))}
    policy = SelectorPolicy(backbone="frame2d", selector_input="probs", hidden=(32,), epochs=30, seed=seed).fit(tables["calibration"])
    curve = policy.sweep(tables["calibration"])
    # the costly operating point: about half the costliest member's cost per video, most videos reaching it
    threshold = nearest(curve, 0.5 * max(p["gflops"] for p in curve))["threshold"]
    run = save_run(root / "run", SYNTHETIC_POOL, policy, list(CLASS_NAMES), threshold, curve, "logits", models=models)
    with torch.inference_mode():
        ms = profile_pool(SYNTHETIC_POOL, models, (1,), 10, [data.paths[j] for j in traffic[:3]])

    def offline(name: str, t: float) -> float:
        return float(policy.route(tables[name], t).gflops.mean())

    return {"run": run, "traffic": [data.paths[j] for j in traffic], "offline": offline, "ms": ms,
            "classes": {"calibration": np.bincount(data.labels[calibration], minlength=12).tolist(),
                        "traffic": np.bincount(data.labels[traffic], minlength=12).tolist()}}


def nearest(curve: list[dict], gflops: float) -> dict:
    """The calibration point whose mean GFLOPs are nearest ``gflops`` (the lower threshold on ties)."""
    return min(curve, key=lambda p: (abs(np.log(p["gflops"] / gflops)), p["threshold"]))


def deploy(serve, run: Path, name: str, options: ServeOptions) -> str:
    """Deploy the run as application ``name`` at /name; its predict URL."""
    from condsel.serve.app import build_graph

    pool = partial(RunPool.from_dir, str(run), options.threshold, options.costs_ms)
    serve.run(build_graph(pool, run_member_loaders(run), options), name=name, route_prefix=f"/{name}")
    return f"http://127.0.0.1:{PORT}/{name}/v1/predict"


def sequential(url: str, files: list[Path], count: int) -> list[dict]:
    out = []
    for i in range(count):
        status, answer = post_video(url, files[i % len(files)])
        if status != 200:
            raise RuntimeError(f"{url}: HTTP {status}: {answer}")
        out.append(answer)
    return out


def open_loop(url: str, files: list[Path], phases: list[tuple[int, float]], rate: float) -> list[dict]:
    """Phases of (clients, seconds); each client sends one request every 1/rate s without waiting for answers."""
    results, lock, threads, i = [], threading.Lock(), [], 0

    def send(path: Path, phase: int) -> None:
        start = time.perf_counter()
        status, answer = post_video(url, path)
        with lock:
            results.append({"phase": phase, "status": status, "latency": time.perf_counter() - start, **answer})

    for phase, (clients, seconds) in enumerate(phases):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            for _ in range(clients):
                t = threading.Thread(target=send, args=(files[i % len(files)], phase))
                t.start()
                threads.append(t)
                i += 1
            time.sleep(1.0 / rate)
    for t in threads:
        t.join()
    return results


def expected_top1(curve: list[dict], threshold: float) -> float:
    ordered = sorted(curve, key=lambda p: p["threshold"])
    return float(np.interp(threshold, [p["threshold"] for p in ordered], [p["top1"] for p in ordered]))


def phase_rows(results: list[dict], phases, costliest: str, curve: list[dict]) -> list[dict]:
    rows = []
    for phase, (clients, seconds) in enumerate(phases):
        rs = [r for r in results if r["phase"] == phase and r["status"] == 200]
        lat = np.array([r["latency"] for r in rs])
        rows.append({"clients": clients, "requests": len(rs), "failed": sum(r["phase"] == phase and r["status"] != 200 for r in results),
                     "p50_ms": 1000 * float(np.percentile(lat, 50)), "p99_ms": 1000 * float(np.percentile(lat, 99)),
                     "throughput_per_s": len(rs) / seconds, "share_costliest": float(np.mean([costliest in r["members"] for r in rs])),
                     "mean_threshold": float(np.mean([r["threshold"] for r in rs])),
                     "expected_top1_proxy": float(np.mean([expected_top1(curve, r["threshold"]) for r in rs]))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=480, help="requests per setting in (a) (default: 480)")
    parser.add_argument("--window", type=int, default=32, help="the controller's --window in (a) (default: 32)")
    parser.add_argument("--phase-seconds", type=float, default=12.0, help="seconds per load phase in (b) (default: 12)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("serve_control.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="condsel-serve-control-"))
    clock = time.perf_counter()
    built = build(root, args.seed)
    run_dir, traffic, ms = built["run"], built["traffic"], built["ms"]["ms"]
    run = load_run(run_dir, [])
    costliest = max(run.order, key=run.gflops.get)
    log.info("built and profiled in %.0f s: %d traffic videos", time.perf_counter() - clock, len(traffic))

    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="condsel-ray-", dir="/tmp"))
    import ray
    from ray import serve

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    report: dict = {"classes": built["classes"], "flop_convention": "GFLOPs = 1e9 multiply-adds"}
    try:
        # (a) drift
        curve = OperatingCurve.from_points(run.calibration)
        point = nearest(run.calibration, float(np.sqrt(curve.cheapest * curve.costliest)))
        target, fixed_t = point["gflops"], point["threshold"]
        drift = {"target_gflops": target, "fixed_threshold": fixed_t, "window": args.window,
                 "offline_gflops_at_fixed": {"calibration": built["offline"]("calibration", fixed_t),
                                             "traffic": built["offline"]("traffic", fixed_t)}}
        for name, options in {"fixed": ServeOptions(threshold=fixed_t, costs_ms=ms),
                              "controller": ServeOptions(threshold=fixed_t, target_gflops=target, window=args.window, costs_ms=ms)}.items():
            url = deploy(serve, run_dir, f"drift_{name}", options)
            sequential(url, traffic, 4)  # warm-up
            answers = sequential(url, traffic, args.requests)
            serve.delete(f"drift_{name}")
            g = np.array([a["cost"]["gflops"] for a in answers])
            half = len(g) // 2
            drift[name] = {"mean_gflops": float(g.mean()), "mean_gflops_second_half": float(g[half:].mean()),
                           "deviation_second_half": float(g[half:].mean() / target - 1),
                           "thresholds": [round(a["threshold"], 4) for a in answers[:: max(1, len(answers) // 12)]]}
            log.info("(a) %s: mean %.4g GFLOPs (second half %.4g) for a target of %.4g (offline at the fixed threshold: %s)",
                     name, g.mean(), g[half:].mean(), target, drift["offline_gflops_at_fixed"])
        report["drift"] = drift

        # (b) load step
        phases = [(1, args.phase_seconds), (4, args.phase_seconds), (1, args.phase_seconds)]
        url = deploy(serve, run_dir, "load_fixed", ServeOptions(threshold=run.threshold, costs_ms=ms))
        sequential(url, traffic, 6)
        one = sequential(url, traffic, 12)
        service_s = float(np.median([a["seconds"] for a in one]))
        rate = 0.5 / service_s  # per client: 1x is half of one server at the accurate point; 4x is twice, past 2 cores
        fixed = open_loop(url, traffic, phases, rate)
        serve.delete("load_fixed")
        fixed_rows = phase_rows(fixed, phases, costliest, run.calibration)
        slo_ms = 4 * fixed_rows[0]["p50_ms"]
        url = deploy(serve, run_dir, "load_slo", ServeOptions(threshold=run.threshold, slo_ms=slo_ms, costs_ms=ms))
        sequential(url, traffic, 6)
        shed = open_loop(url, traffic, phases, rate)
        serve.delete("load_slo")
        report["load"] = {"rate_per_client_per_s": rate, "slo_ms": slo_ms, "fixed": fixed_rows,
                          "slo": phase_rows(shed, phases, costliest, run.calibration)}
        for name in ("fixed", "slo"):
            for row in report["load"][name]:
                log.info("(b) %-5s %d client(s): p50 %.0f ms, p99 %.0f ms, %.1f/s, %.0f%% reach %s, threshold %.2f, top-1 proxy %.1f%%",
                         name, row["clients"], row["p50_ms"], row["p99_ms"], row["throughput_per_s"], 100 * row["share_costliest"],
                         costliest, row["mean_threshold"], row["expected_top1_proxy"])

        # (c) cost agreement, at 1x load from the fixed run's first phase
        first = [r for r in fixed if r["phase"] == 0 and r["status"] == 200]
        routes = {}
        for r in first:
            routes.setdefault(" + ".join(r["members"]), []).append(r)
        report["costs"] = {
            "members": {m: {"gflops": run.gflops[m], "profiled_ms": ms[m]} for m in run.order},
            "decode_ms": built["ms"]["decode"],
            "routes": {k: {"videos": len(v), "gflops": float(np.mean([r["cost"]["gflops"] for r in v])),
                           "profiled_ms": float(np.mean([r["cost"]["ms"] for r in v])),
                           "serve_wall_ms": 1000 * float(np.mean([r["seconds"] for r in v]))} for k, v in routes.items()},
            "policy": {"gflops": float(np.mean([r["cost"]["gflops"] for r in first])),
                       "profiled_ms": float(np.mean([r["cost"]["ms"] for r in first])),
                       "serve_wall_ms": 1000 * float(np.mean([r["seconds"] for r in first]))},
        }
        log.info("(c) %s", json.dumps(report["costs"], indent=1))
    finally:
        serve.shutdown()
        ray.shutdown()
    report["seconds"] = time.perf_counter() - clock
    args.out.write_text(json.dumps(report, indent=1))
    log.info("wrote %s in %.0f s", args.out, report["seconds"])


if __name__ == "__main__":
    main()
