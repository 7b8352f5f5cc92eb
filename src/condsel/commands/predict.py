"""``condsel predict``: run conditional inference with a run directory on video files."""

from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """\
For each VIDEO: decode it once, run the backbone, let the selector choose the
cheapest model whose confidence reaches the threshold, run that model, and
report {"video", "label", "score", "model", "gflops", "seconds"}. score is the
chosen model's softmax probability of label; gflops counts the backbone, the
selector and the chosen model (multiply-adds, the X3D/fvcore convention);
seconds include decoding.

RUNDIR is a run directory written by `condsel demo` (DIR/synthetic/run).
Without --threshold or --budget the run's default threshold is used. --budget
picks the largest threshold whose mean GFLOPs on the run's calibration curve
stay within the budget.

A video that cannot be decoded gets {"video", "error"} and the others go on;
the exit status is 1 if any video failed.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="classify video files with a run directory's selector and pool",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--run", required=True, metavar="RUNDIR", help="run directory (e.g. DIR/synthetic/run from condsel demo)")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (mp4, avi, ...)")
    point = p.add_mutually_exclusive_group()
    point.add_argument("--threshold", type=float, metavar="T", help="selector threshold in [0, 1]")
    point.add_argument("--budget", type=float, metavar="GFLOPS", help="mean GFLOPs per video to stay within")
    p.add_argument("--json", action="store_true", help="print a JSON list of per-video results")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from condsel.pool.predict import predict_video, warm_up
    from condsel.pool.run_dir import load_run
    from condsel.video.decode import VideoDecodeError

    loaded = load_run(args.run)
    threshold = loaded.operating_threshold(args.threshold, args.budget)
    warm_up(loaded)
    results = []
    for path in tqdm(args.videos, desc="predict", unit="video", disable=None, leave=False):
        try:
            results.append(predict_video(loaded, path, threshold).to_dict())
        except VideoDecodeError as e:
            results.append({"video": path, "error": str(e)})
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print(f"threshold {threshold:.3f}; GFLOPs = multiply-adds per video (backbone + selector + chosen model)")
        for r in results:
            if "error" in r:
                print(f"{r['video']}: ERROR {r['error']}")
            else:
                print(f"{r['video']}: {r['label']} ({r['score']:.3f}) by {r['model']}, {r['gflops']:.4f} GFLOPs, {1000 * r['seconds']:.1f} ms")
    failed = sum("error" in r for r in results)
    if failed:
        print(f"condsel predict: {failed} of {len(results)} videos failed", file=sys.stderr)
    return 1 if failed else 0

