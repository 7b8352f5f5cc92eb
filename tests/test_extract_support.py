"""Shared material for the extraction tests (no tests here): small videos, bad files, a tiny run directory.

The pool is two small networks of the synthetic pool's families with random
weights: extraction moves numbers, it does not judge them, and a tiny pool
keeps a run of ~20 videos to a second or two of compute on 2 cores.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from conftest import FIXTURES

from condsel.pool.config import PoolConfig, PoolMember, build_pool
from condsel.pool.run_dir import save_run
from condsel.selection.method.policies import SelectorPolicy
from condsel.selection.data.table import PredictionTable
from condsel.synthetic import CLASS_NAMES, render_clip
from condsel.synthetic.render import FPS
from condsel.video.encode import write_video
from condsel.video.sampling import ClipSpec

REPO = Path(__file__).resolve().parents[1]
REAL_VIDEOS = [FIXTURES / "videos" / "arm_wrestling_cut.mp4", FIXTURES / "videos" / "unlabelled_test_cut.avi"]
SHORT_SIDE = 40

TINY_POOL = PoolConfig(
    backbone="frame2d",
    members=(
        PoolMember("frame2d", "frame2d", ClipSpec(num_frames=4, stride=4, size=32), len(CLASS_NAMES), options={"widths": [8, 16]}),
        PoolMember(
            "conv3d",
            "conv3d_s",
            ClipSpec(num_frames=8, stride=1, size=SHORT_SIDE, clips=2, crops=3),
            len(CLASS_NAMES),
            options={"widths": [8, 16], "strides": [[1, 2, 2], [2, 2, 2]]},
        ),
    ),
)


def make_run_dir(root: Path, seed: int = 0) -> Path:
    """A run directory as ``condsel demo`` writes it, with randomly initialised networks."""
    torch.manual_seed(seed)
    models = build_pool(TINY_POOL, random_weights=True)
    gflops = TINY_POOL.gflops
    rng = np.random.default_rng(seed)
    table = PredictionTable(
        names=np.array([f"v{i}" for i in range(24)]), labels=rng.integers(0, len(CLASS_NAMES), 24),
        logits={m: rng.normal(size=(24, len(CLASS_NAMES))).astype(np.float32) for m in gflops}, gflops=gflops,
        class_names=list(CLASS_NAMES),
    )
    policy = SelectorPolicy(backbone="frame2d", hidden=(8,), epochs=1).fit(table)
    calibration = [{"threshold": 0.5, "gflops": sum(gflops.values()), "top1": 50.0}]
    return save_run(root, TINY_POOL, policy, list(CLASS_NAMES), 0.5, calibration, "logits", models=models)


def make_videos(root: Path, count: int, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` synthetic clips under ``root/videos``; (path relative to root, class name) each."""
    rows = []
    for i in range(count):
        label = CLASS_NAMES[i % len(CLASS_NAMES)]
        relative = f"videos/good_{i:03d}.mp4"
        write_video(root / relative, render_clip(label, np.random.default_rng([seed, i])), fps=FPS)
        rows.append((relative, label))
    return rows


def make_bad_files(root: Path, good: Path) -> dict[str, str]:
    """One file of each kind a long run meets; path relative to ``root`` -> the reason decoding must give."""
    data = good.read_bytes()
    bad = root / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (bad / "not_a_video.mp4").write_text("this is a text file, not a video\n" * 50)
    # the same H.264 stream under a codec tag no decoder knows
    (bad / "unknown_codec.mp4").write_bytes(data.replace(b"avc1", b"zzzz"))
    return {
        "bad/empty.mp4": "empty file",
        "bad/truncated.mp4": "not a readable video",
        "bad/not_a_video.mp4": "not a readable video",
        "bad/unknown_codec.mp4": "unsupported codec",
        "bad/missing.mp4": "file not found",
    }


def write_manifest(path: Path, rows: list[tuple[str, str]], extra_lines: list[bytes] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    with path.open("ab") as f:
        for line in extra_lines:
            f.write(line + b"\n")
    return path


def condsel_command(*args: str, torchrun: int = 0) -> list[str]:
    """``python -m condsel ARGS``, or the same under ``torchrun --standalone --nproc-per-node N``."""
    if torchrun:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={torchrun}", "-m", "condsel", *args]
    return [sys.executable, "-m", "condsel", *args]


def run_condsel(*args: str, torchrun: int = 0, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(condsel_command(*args, torchrun=torchrun), check=False, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
