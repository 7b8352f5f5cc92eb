"""Extraction throughput, 1 vs 2 processes, and the fault bars of the extraction issue, on this machine.

Generates ``--videos`` synthetic videos (``condsel.synthetic``), spoils
``--bad`` of them (zero bytes, truncated, text renamed .mp4, deleted), then:

1. ``condsel extract`` in one process, timed;
2. the same under ``torchrun --standalone --nproc-per-node 2``, timed; the
   store must hold exactly the good videos once each, list the spoiled ones
   as failures with messages, and the exit status must be non-zero;
3. one process killed with SIGKILL part-way, then re-run: the same checks,
   and the same numbers as the torchrun store (to 1e-6).

The pool is ``--pool`` (a pool config, or a ``condsel fit`` / ``condsel demo`` run directory),
or by default the demo's pool architectures with untrained weights (weights
do not change the cost). Prints a markdown table for docs/extract.md.

    python benchmarks/extract_throughput.py [--videos 120] [--bad 4] [--workers 1] [--repeats 3] [--pool RUN]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from condsel.extract import load_store
from condsel.pool.config import build_pool, write_pool_config
from condsel.synthetic import CLASS_NAMES, generate
from condsel.workflows.demo import SYNTHETIC_POOL


def untrained_demo_pool(root: Path) -> Path:
    """The demo's pool architectures with random weights saved as checkpoints, as a pool config."""
    torch.manual_seed(0)
    models = build_pool(SYNTHETIC_POOL, random_weights=True)
    members = []
    for m in SYNTHETIC_POOL.members:
        root.mkdir(parents=True, exist_ok=True)
        torch.save(models[m.name].state_dict(), root / f"{m.name}.pt")
        members.append(replace(m, checkpoint=root / f"{m.name}.pt"))
    (root / "classes.txt").write_text("".join(f"{c}\n" for c in CLASS_NAMES), encoding="utf-8")  # the manifest's labels
    return write_pool_config(replace(SYNTHETIC_POOL, members=tuple(members)), root / "pool.toml", relative_to=root)


def spoil(data_root: Path, paths: list[Path], count: int) -> list[str]:
    """Damage ``count`` videos in four ways, spread over the manifest; their manifest names."""
    picks = np.linspace(0, len(paths) - 1, count + 2).round().astype(int)[1:-1]
    for k, i in enumerate(picks):
        path = paths[i]
        kind = k % 4
        if kind == 0:
            path.write_bytes(b"")
        elif kind == 1:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
        elif kind == 2:
            path.write_text("not a video\n" * 20)
        else:
            path.unlink()
    return [paths[i].relative_to(data_root).as_posix() for i in picks]


def command(args: list[str], processes: int) -> list[str]:
    if processes == 1:
        return [sys.executable, "-m", "condsel", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", "-m", "condsel", *args]


def extract_args(pool: Path, manifest: Path, out: Path, workers: int) -> list[str]:
    classes = pool.parent / "classes.txt"  # a pool config beside its class names (as untrained_demo_pool writes it)
    return ["extract", "--pool", str(pool), "--manifest", str(manifest), "--out", str(out), "--workers", str(workers),
            "--no-progress", *(["--classes", str(classes)] if pool.is_file() and classes.is_file() else [])]


def timed_run(args: list[str], processes: int) -> dict:
    start = time.perf_counter()
    result = subprocess.run(command(args, processes), check=False, capture_output=True, text=True)
    wall = time.perf_counter() - start
    match = re.search(r"rank 0 of \d+: (\d+) videos in ([\d.]+) s", result.stdout)
    if match is None:
        raise RuntimeError(f"no summary from condsel extract:\n{result.stdout}\n{result.stderr}")
    return {"returncode": result.returncode, "wall": wall, "rank0_videos": int(match[1]), "rank0_seconds": float(match[2])}


def killed_then_resumed(args: list[str], out: Path, after: int) -> tuple[int, int]:
    """SIGKILL a one-process run once ``after`` videos are stored, re-run it; (stored at the kill, exit status)."""
    process = subprocess.Popen(command(args, 1), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while len(list(out.glob("videos/*/*.npz"))) < after and process.poll() is None:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    stored = len(list(out.glob("videos/*/*.npz")))
    return stored, subprocess.run(command(args, 1), check=False, capture_output=True, text=True).returncode


def check_store(out: Path, good: set[str], spoiled: list[str], returncode: int) -> list[str]:
    """The bar's conditions that fail (empty when the store is right)."""
    doc = json.loads(subprocess.run([sys.executable, "-m", "condsel", "inspect", str(out), "--json"],
                                    capture_output=True, text=True, check=True).stdout)
    problems = []
    if len(doc["videos"]) != len(set(doc["videos"])) or set(doc["videos"]) != good:
        problems.append(f"store holds {len(doc['videos'])} videos ({len(set(doc['videos']))} distinct), expected the {len(good)} good ones")
    failed = {f["video"]: f["error"] for f in doc["failures"]}
    if sorted(failed) != sorted(spoiled) or not all(failed.values()):
        problems.append(f"failures {sorted(failed)} != spoiled {sorted(spoiled)}")
    if returncode == 0:
        problems.append("exit status 0 despite failures")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=120)
    parser.add_argument("--bad", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="decoding workers per process")
    parser.add_argument("--pool", type=Path, help="pool config (with classes.txt beside it) or run directory "
                        "(default: the demo's pool, untrained)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per process count (default: 3)")
    parser.add_argument("--workdir", type=Path, help="keep the videos and stores here (default: a temporary directory)")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="condsel_extract_bench_"))
    data = generate(work / "data", args.videos, seed=args.seed)
    spoiled = spoil(data.root, data.paths, args.bad)
    good = {p.relative_to(data.root).as_posix() for p in data.paths} - set(spoiled)
    pool = args.pool or untrained_demo_pool(work / "pool")
    manifest = data.root / "manifest.csv"

    # interleaved repeats, median reported: the machine may be shared
    runs = {1: [], 2: []}
    for repeat in range(args.repeats):
        for processes in (1, 2):
            out = work / f"store_{processes}_{repeat}"
            runs[processes].append(timed_run(extract_args(pool, manifest, out, args.workers), processes))
    problems = {"torchrun, 2 processes": check_store(work / "store_2_0", good, spoiled, runs[2][0]["returncode"])}
    killed = work / "store_killed"
    stored_at_kill, returncode = killed_then_resumed(extract_args(pool, manifest, killed, args.workers), killed, len(good) // 2)
    killed_bar = f"kill -9 at {stored_at_kill} stored, re-run"
    problems[killed_bar] = check_store(killed, good, spoiled, returncode)
    reference, resumed = load_store(work / "store_2_0"), load_store(killed)
    deviation = max(float(np.abs(reference.logits[m] - resumed.logits[m]).max()) for m in reference.logits)
    if deviation > 1e-6:
        problems[killed_bar].append(f"logits differ from the torchrun store by {deviation:.2e}")

    print(f"\n{args.videos} synthetic videos ({args.bad} spoiled), pool {pool}, --workers {args.workers}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}\n")
    print(f"median of {args.repeats} interleaved runs; the loop rate leaves out start-up (imports, loading the pool)\n")
    print("| processes | wall s | videos/s (wall) | rank-0 loop s | videos/s (loop, all ranks) |")
    print("|---|---|---|---|---|")
    for processes, repeats in runs.items():
        wall = statistics.median(r["wall"] for r in repeats)
        loop = statistics.median(r["rank0_seconds"] for r in repeats)
        loop_rate = statistics.median(r["rank0_videos"] * processes / r["rank0_seconds"] for r in repeats)
        print(f"| {processes} | {wall:.1f} | {args.videos / wall:.2f} | {loop:.1f} | {loop_rate:.2f} |")
    print()
    for name, issues in problems.items():
        print(f"bar, {name}: " + ("PASS (exactly the good videos once each, the spoiled ones in failures, exit non-zero)"
                                  if not issues else "FAIL: " + "; ".join(issues)))
    return 0 if not any(problems.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
