"""Vectorized detection mAP vs a per-detection loop on THUMOS'14-sized input.

212 test videos of the real THUMOS'14 ground truth (W-TALC reduced set) and
~100k generated detections (jittered copies of GT segments, 10% relabelled,
plus random false alarms). The loop is the ActivityNet-rule reference of
condsel.localization.reference (the tests check against it too); both must
agree to 1e-9.

    python benchmarks/detection_map_speed.py [--per-segment 28] [--false-alarms 25]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from condsel.datasets.thumos import load_wtalc
from condsel.localization.detection_map import detection_map, parse_tiou
from condsel.localization.reference import detections_from_rows, generated_detections, reference_map

WTALC = Path(__file__).resolve().parents[1] / "tests" / "data" / "thumos14" / "wtalc_subset"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-segment", type=int, default=28, help="detections generated around each GT segment")
    parser.add_argument("--false-alarms", type=int, default=25, help="random detections per video")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    gt = load_wtalc(WTALC).subset("test")
    rows = generated_detections(gt, args.per_segment, args.seed, args.false_alarms)
    detections = detections_from_rows(rows)
    thresholds = parse_tiou("0.1:0.7:0.1")

    start = time.perf_counter()
    fast = detection_map(gt, detections, thresholds).map
    fast_s = time.perf_counter() - start
    start = time.perf_counter()
    slow = np.array(reference_map(gt, rows, thresholds))
    slow_s = time.perf_counter() - start

    diff = float(np.abs(fast - slow).max())
    print(f"{len(gt.videos)} videos, {len(detections)} detections, tIoU {thresholds.tolist()}")
    print(f"mAP (%): {np.round(fast, 4).tolist()}  average {fast.mean():.4f}")
    print(f"vectorized: {fast_s:.3f} s   per-detection loop: {slow_s:.3f} s   speed-up x{slow_s / fast_s:.1f}")
    print(f"max |difference|: {diff:.3e}")
    return 0 if diff <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
