"""Soak benchmark of ``condsel serve``: thousands of requests at a steady load, nothing may leak or drift.

Usage (the machine is shared: hold the locks, and record the load):
    flock /tmp/ray.lock flock /tmp/bench.lock python benchmarks/serve_soak.py [--minutes 10] [--requests 3000]
        [--window 64] [--seed 0] [--workdir DIR] [--out serve_soak.json]

The served run is serve_control.py's (built here in a minute or two, its
helper reused): the demo's three synthetic nets and the paper's selector,
fitted on a calibration mix, serving drifted traffic. One ``condsel serve``
process (a local Ray on 127.0.0.1, ``--ray-cpus 2``) runs with the budget
controller on (``--target-gflops`` at the calibration point nearest the
geometric mean of the cheapest and costliest points).

1. Warm-up: 40 requests one at a time.
2. Capacity: 80 requests from 4 closed-loop clients; capacity = requests / wall.
3. Soak: an open-loop stream at half the capacity (request i sent at i / rate
   seconds, whatever the answers), ``--requests`` at least and ``--minutes``
   long at least, whichever takes more requests; a request is an error unless
   it is answered 200 within 120 s.

Printed: errors; per minute of sending time, requests, p50 and p99 latency at
the client and the realised mean GFLOPs per video against the target; the
resident memory of every process of the service (``condsel serve`` and every
Ray process under it) after the warm-up and at the end; the number of objects
in Ray's object store after the warm-up and at the end (``ray memory
--stats-only``). Then the verdicts: 0 errors, the last minute's p99 within
1.5x the first's, total resident memory within +10% of its post-warm-up
value, object count not grown.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_control import build, nearest, sequential  # noqa: E402  (a sibling benchmark script)

from condsel.pool.run_dir import load_run  # noqa: E402
from condsel.serve.client import post_video  # noqa: E402
from condsel.serve.control import OperatingCurve  # noqa: E402
from condsel.serve.ray_host import LOOPBACK_ENV  # noqa: E402

PORT = 8767
REQUEST_TIMEOUT_S = 120.0
WARMUP, CAPACITY_REQUESTS, CAPACITY_CLIENTS = 40, 80, 4


def built_run(root: Path, seed: int) -> tuple[Path, list[Path]]:
    """serve_control's run directory and traffic videos under ``root``: built there once, then reused."""
    listing = root / "traffic.txt"
    if not listing.exists():
        built = build(root, seed)
        listing.write_text("".join(f"{p}\n" for p in built["traffic"]))
    return root / "run", [Path(line) for line in listing.read_text().splitlines()]


def start_service(run_dir: Path, target: float, window: int, log_path: Path) -> tuple[subprocess.Popen, str]:
    """``condsel serve`` in its own process group; returns it and its Ray GCS address once /healthz says 200."""
    env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="condsel-ray-", dir="/tmp")}
    command = [sys.executable, "-m", "condsel", "serve", "--run", str(run_dir), "--port", str(PORT), "--ray-cpus", "2",
               "--target-gflops", repr(target), "--window", str(window)]
    service = subprocess.Popen(command, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise RuntimeError(f"condsel serve exited with {service.returncode}: {log_path.read_text()[-2000:]}")
        found = re.search(r"Ray at (\S+);", log_path.read_text())
        if found and healthy():
            return service, found.group(1)
        time.sleep(1.0)
    raise RuntimeError(f"condsel serve did not become healthy in 300 s: {log_path.read_text()[-2000:]}")


def healthy() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def stop_service(service: subprocess.Popen) -> None:
    service.send_signal(signal.SIGINT)
    try:
        service.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(service.pid, signal.SIGKILL)
        service.wait()


def service_rss(service: subprocess.Popen) -> dict[str, float]:
    """MiB resident per process of the service: ``condsel serve`` and every process under it, keyed ``name[pid]``."""
    root = psutil.Process(service.pid)
    out = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            out[f"{process.name()}[{process.pid}]"] = process.memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            pass
    return out


def object_count(gcs_address: str) -> int:
    """Objects in Ray's object store, as ``ray memory --stats-only`` counts them."""
    ray = Path(sys.executable).with_name("ray")
    # send the token the local Ray made (~/.ray/auth_token), and look for Ray on loopback as condsel serve put it
    env = {**os.environ, "RAY_AUTH_MODE": "token", LOOPBACK_ENV: "0"}
    text = subprocess.run([str(ray), "memory", "--stats-only", "--address", gcs_address],
                          capture_output=True, text=True, timeout=120, env=env).stdout
    found = re.search(r"([\d,]+) objects", text)
    if not found:
        raise RuntimeError(f"ray memory printed no object count: {text[-1000:]}")
    return int(found.group(1).replace(",", ""))


def capacity(url: str, files: list[Path]) -> float:
    """Answers per second from closed-loop clients (each sends its next request when answered)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(CAPACITY_CLIENTS) as pool:
        statuses = list(pool.map(lambda p: post_video(url, p, timeout=REQUEST_TIMEOUT_S)[0],
                                 [files[i % len(files)] for i in range(CAPACITY_REQUESTS)]))
    if any(s != 200 for s in statuses):
        raise RuntimeError(f"capacity run: HTTP statuses {sorted(set(statuses))}")
    return CAPACITY_REQUESTS / (time.perf_counter() - start)


def open_loop(url: str, files: list[Path], rate: float, count: int) -> list[dict]:
    """``count`` requests, request i sent at i / rate s; the send times do not wait for answers."""
    results: list[dict] = []
    lock = threading.Lock()

    def send(i: int, sent: float) -> None:
        try:
            status, answer = post_video(url, files[i % len(files)], timeout=REQUEST_TIMEOUT_S)
        except OSError as e:  # refused, reset, timed out: an error like any non-200
            status, answer = -1, {"error": str(e)}
        record = {"sent": sent, "latency": time.perf_counter() - start - sent, "status": status,
                  "gflops": answer.get("cost", {}).get("gflops") if status == 200 else None}
        with lock:
            results.append(record)

    with ThreadPoolExecutor(64) as pool:
        start = time.perf_counter()
        for i in range(count):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, i, time.perf_counter() - start)
    return sorted(results, key=lambda r: r["sent"])


def per_minute(results: list[dict], target: float) -> list[dict]:
    rows = []
    for minute in range(int(max(r["sent"] for r in results) // 60) + 1):
        rs = [r for r in results if minute * 60 <= r["sent"] < (minute + 1) * 60]
        ok = [r for r in rs if r["status"] == 200]
        latency = 1000 * np.array([r["latency"] for r in ok]) if ok else np.array([math.nan])
        gflops = float(np.mean([r["gflops"] for r in ok])) if ok else math.nan
        rows.append({"minute": minute + 1, "requests": len(rs), "errors": len(rs) - len(ok),
                     "p50_ms": float(np.percentile(latency, 50)), "p99_ms": float(np.percentile(latency, 99)),
                     "gflops": gflops, "vs_target": gflops / target - 1})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="least duration of the soak (default: 10)")
    parser.add_argument("--requests", type=int, default=3000, help="least number of soak requests (default: 3000)")
    parser.add_argument("--window", type=int, default=64, help="the controller's --window (default: 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="build the served run here, or reuse the one an earlier run built there")
    parser.add_argument("--out", type=Path, default=Path("serve_soak.json"))
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    root = args.workdir or Path(tempfile.mkdtemp(prefix="condsel-serve-soak-"))
    run_dir, traffic = built_run(root, args.seed)
    run = load_run(run_dir, [])
    curve = OperatingCurve.from_points(run.calibration)
    target = nearest(run.calibration, float(np.sqrt(curve.cheapest * curve.costliest)))["gflops"]
    url = f"http://127.0.0.1:{PORT}/v1/predict"
    report: dict = {"target_gflops": target, "load_before": os.getloadavg()}
    service, gcs = start_service(run_dir, target, args.window, root / "serve.log")
    try:
        sequential(url, traffic, WARMUP)
        report["capacity_per_s"] = capacity(url, traffic)
        rate = report["capacity_per_s"] / 2
        count = max(args.requests, math.ceil(rate * 60 * args.minutes))
        report["rss_mib_start"], report["objects_start"] = service_rss(service), object_count(gcs)
        print(f"capacity {report['capacity_per_s']:.2f} requests/s; soak: {count} requests open-loop at {rate:.2f}/s "
              f"(~{count / rate / 60:.1f} min), target {target:.4g} GFLOPs/video", flush=True)
        results = open_loop(url, traffic, rate, count)
        report["rss_mib_end"], report["objects_end"] = service_rss(service), object_count(gcs)
    finally:
        stop_service(service)
    report["load_after"] = os.getloadavg()
    report["minutes"] = per_minute(results, target)
    report["errors"] = sum(r["status"] != 200 for r in results)
    report["requests"] = len(results)
    args.out.write_text(json.dumps(report, indent=1))
    return print_report(report)


def print_report(report: dict) -> int:
    rows, target = report["minutes"], report["target_gflops"]
    print(f"\n{report['requests']} requests, errors {report['errors']}; target {target:.4g} GFLOPs/video; "
          f"load average {report['load_before'][0]:.1f} before, {report['load_after'][0]:.1f} after (1 min)")
    print("| minute | requests | errors | p50 ms | p99 ms | GFLOPs/video | vs target |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['minute']} | {r['requests']} | {r['errors']} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
              f"{r['gflops']:.4g} | {100 * r['vs_target']:+.1f}% |")
    start, end = report["rss_mib_start"], report["rss_mib_end"]
    print("\n| process | RSS MiB after warm-up | RSS MiB at end | growth |\n|---|---|---|---|")
    for name in sorted(set(start) | set(end)):
        a, b = start.get(name), end.get(name)
        growth = f"{100 * (b / a - 1):+.1f}%" if a and b else "-"
        print(f"| {name} | {'-' if a is None else f'{a:.0f}'} | {'-' if b is None else f'{b:.0f}'} | {growth} |")
    total_a, total_b = sum(start.values()), sum(end.values())
    print(f"| total ({len(start)} -> {len(end)} processes) | {total_a:.0f} | {total_b:.0f} | {100 * (total_b / total_a - 1):+.1f}% |")
    print(f"\nRay object store: {report['objects_start']} objects after warm-up, {report['objects_end']} at the end")
    full = [r for r in rows if r["requests"] >= 0.5 * rows[0]["requests"]]  # a short last minute is no minute
    verdicts = {
        "no errors": report["errors"] == 0,
        "last minute's p99 <= 1.5x the first's": full[-1]["p99_ms"] <= 1.5 * full[0]["p99_ms"],
        "resident memory growth <= 10%": total_b <= 1.1 * total_a,
        "no object-store growth": report["objects_end"] <= report["objects_start"],
    }
    for name, ok in verdicts.items():
        print(f"{'PASS' if ok else 'FAIL'}: {name}")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
