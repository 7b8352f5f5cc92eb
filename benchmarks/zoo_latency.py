"""CPU latency of every zoo model (batch 1, one view) and of optical flow extraction.

Each model runs at its default input (random weights: latency does not depend
on them) after warm-up runs; the table reports the median of ``--repeats``.
Flow is timed on real frames of the Kinetics clip in ../shared/data/videos,
resized to 224x224, per frame pair. Prints markdown tables for docs/zoo.md.

    python benchmarks/zoo_latency.py [--repeats 5] [--warmup 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from condsel import models
from condsel.video.flow import compute_flow

VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos" / "kinetics_arm_wrestling.mp4"


def median_seconds(fn, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def model_rows(names: list[str], repeats: int, warmup: int) -> list[str]:
    rows = []
    for name in names:
        spec = models.get_spec(name)
        model = models.create_model(name)
        x = torch.randn(models.input_shape(name), generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            seconds = median_seconds(lambda: model(x), repeats, warmup)
        gflops = models.gflops(name)
        rows.append(
            f"| {name} | {spec.frames}x{spec.crop}² ({spec.in_channels} ch) | {gflops:.3f} | {seconds * 1e3:.0f} "
            f"| {gflops / seconds:.1f} |"
        )
        print(rows[-1], flush=True)
    return rows


def video_frames(count: int, size: int) -> np.ndarray:
    with av.open(str(VIDEO)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(cv2.resize(frame.to_ndarray(format="rgb24"), (size, size), interpolation=cv2.INTER_AREA))
            if len(frames) == count:
                break
    return np.stack(frames)


def flow_rows(repeats: int, warmup: int, pairs: int) -> list[str]:
    frames = video_frames(pairs + 1, 224)
    rows = []
    for method in ("dis", "farneback"):
        seconds = median_seconds(lambda: compute_flow(frames, method), repeats, warmup) / pairs
        rows.append(f"| {method} | 224x224 | {seconds * 1e3:.1f} | {16 * seconds:.2f} |")
        print(rows[-1], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per model (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (default 1)")
    parser.add_argument("--models", nargs="*", default=models.list_models(), help="zoo names (default: all)")
    parser.add_argument("--flow-pairs", type=int, default=16, help="frame pairs per flow timing")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"Machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
        f"{args.threads} thread(s), load average {load}; torch {torch.__version__}, OpenCV {cv2.__version__}"
    )
    print("\n| model | input (one view) | GFLOPs | ms (median) | GFLOPs/s |\n|---|---|---|---|---|")
    model_rows(args.models, args.repeats, args.warmup)
    print("\n| flow | frames | ms per pair | s per 16-frame clip |\n|---|---|---|---|")
    flow_rows(args.repeats, args.warmup, args.flow_pairs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
