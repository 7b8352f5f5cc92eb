"""``condsel localize``: W-TALC streams + clip-level selection on per-clip feature files."""

from __future__ import annotations

import argparse
import sys

from condsel._argtypes import fraction, int_at_least, nonnegative_int, positive_float, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "localize",
        help="weakly-supervised localization with clip-level rgb/motion selection, from per-clip features",
        description="Train one W-TALC head per stream from video-level labels, label each training clip "
        "rgb or motion by the streams' CAS disparity (top --beta share per video), train the clip selector on "
        "the rgb features, and sweep its threshold: detection mAP (ActivityNet rules) vs GFLOPs per clip, "
        "against random clip selection at matched compute, each stream alone and both. Features: one (T, D) "
        ".npy per video and stream, FEATURES/<stream>/<video>.npy. Writes OUT/summary.json, "
        "OUT/detections/{rgb,motion,both,selector}.json, curve.png, disparity_hist.png, timeline.png. "
        "Exit status 1 when some videos had to be skipped (listed under 'failures').",
    )
    p.add_argument("--features", required=True, help="directory holding <stream>/<video>.npy files")
    p.add_argument("--annotations", required=True, choices=["thumos14", "multithumos"],
                   help="protocol: thumos14 (train on validation, test on test, tIoU 0.1:0.7) or multithumos "
                   "(training/testing, tIoU 0.1:0.5)")
    p.add_argument("--gt", required=True, help="ground truth: W-TALC folder or ActivityNet json (thumos14), "
                   "multithumos.json (multithumos)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--rgb-stream", default="rgb", help="feature sub-directory of the appearance stream (default rgb)")
    p.add_argument("--motion-stream", default="flow", help="feature sub-directory of the motion stream (default flow)")
    p.add_argument("--clip-seconds", type=positive_float, default=16 / 25,
                   help="seconds per feature row (default 0.64: 16-frame I3D clips at 25 fps)")
    p.add_argument("--rgb-model", default="i3d_rgb", help="zoo model whose per-clip GFLOPs the rgb stream costs")
    p.add_argument("--motion-model", default="i3d_flow", help="zoo model whose per-clip GFLOPs the motion stream costs")
    p.add_argument("--iterations", type=positive_int, default=100_000, help="W-TALC training steps per stream (published: 100000)")
    p.add_argument("--lr", type=positive_float, default=1e-4, help="W-TALC Adam learning rate (published: 1e-4)")
    p.add_argument("--beta", type=fraction, default=0.3, help="share of each training video's clips labelled motion")
    p.add_argument("--pseudo-labels", action="store_true",
                   help="train the selector on the pure pseudo-labels Q instead of G = Q (|D - tau| + 1)")
    p.add_argument("--fusion", choices=["min", "mean"], default="min",
                   help="CAS of clips where motion runs: per-class minimum of both streams (default: both must "
                   "agree) or their mean (classic two-stream late fusion)")
    p.add_argument("--standardize", action="store_true", help="z-score features with training statistics")
    p.add_argument("--threshold", type=fraction, default=0.5, help="selector threshold of detections/selector.json")
    p.add_argument("--points", type=int_at_least(2), default=21, help="operating points on the curve")
    p.add_argument("--random-seeds", type=positive_int, default=5, help="random-selection repeats per point")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from condsel.datasets.thumos import load_ground_truth
    from condsel.localization.pipeline import (
        SelectionSettings,
        run_feature_localization,
        zoo_costs,
    )
    from condsel.localization.wtalc import WTALCConfig

    gt = load_ground_truth(args.gt)
    costs = zoo_costs(args.rgb_model, args.motion_model)
    summary = run_feature_localization(
        Path(args.features), gt, args.annotations, Path(args.out), costs,
        rgb_stream=args.rgb_stream, motion_stream=args.motion_stream, clip_seconds=args.clip_seconds,
        wtalc=WTALCConfig(iterations=args.iterations, lr=args.lr),
        settings=SelectionSettings(beta=args.beta, soft=not args.pseudo_labels, points=args.points,
                                   random_seeds=args.random_seeds, standardize=args.standardize, fusion=args.fusion,
                                   threshold=args.threshold),
        seed=args.seed,
    )
    for name, point in summary["streams"].items():
        print(f"{name:>7}: {point['map']:6.2f} average mAP (%) at {point['gflops']:.2f} GFLOPs per clip")
    print(f"selector above random over {100 * summary['selector_above_random_fraction']:.0f}% of the shared GFLOPs range")
    print(f"wrote {args.out}/summary.json, curve.png, disparity_hist.png, timeline.png, detections/")
    if summary["failures"]:
        print(f"{len(summary['failures'])} videos skipped (see 'failures' in summary.json), e.g.:", file=sys.stderr)
        for video, why in list(summary["failures"].items())[:5]:
            print(f"  {video}: {why}", file=sys.stderr)
        return 1
    return 0
