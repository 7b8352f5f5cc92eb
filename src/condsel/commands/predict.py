"""``condsel predict``: run conditional inference with a run directory on video files."""

from __future__ import annotations

import argparse
import json
import sys

from condsel._argtypes import add_placement_flags, fraction, positive_float

DESCRIPTION = """\
For each VIDEO: decode it once, then let the run's policy decide which pool
members to run (the paper's selector: the backbone, then the chosen model; a
cascade: members in order until one is confident), and report
{"video", "label", "score", "model", "members", "gflops", "seconds",
"random_weights"}. score is the final probability of label; model is the last
member run (the selector's chosen model); members lists every member run;
gflops counts them all plus the policy itself (for the selector: backbone +
selector + chosen model, with the members' GFLOPs as `condsel zoo --pool`
lists them; multiply-adds, the X3D/fvcore convention); seconds include
decoding. Each member's scores are computed exactly as `condsel extract`
stores them (same decoding, views, normalisation and view aggregation).

RUNDIR is a run directory written by `condsel fit` or by `condsel demo`
(DIR/synthetic/run). Without --threshold or --budget the run's operating
point is used. --budget picks the most accurate threshold whose mean cost on
the run's calibration curve (cross-validated for `condsel fit`) stay within
the budget. A run fitted on profiled [ms] costs (`condsel fit --costs`) takes
--budget in ms, and each result also has "ms": the profiled forward ms of the
members run. A run fitted with --random-weights says so in every result.

--device runs the members on a GPU (cuda, cuda:N); decoding stays on the CPU
and the views are copied over pinned and non-blocking. --precision bf16|fp16
runs the forward passes under autocast (scores stay float32); each result then
has "precision", and the text output says it. fp16 needs CUDA; asking for
cuda where torch sees none is an error (exit 2).

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
    p.add_argument("--run", required=True, metavar="RUNDIR", help="run directory from condsel fit or condsel demo (DIR/synthetic/run)")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (mp4, avi, ...)")
    point = p.add_mutually_exclusive_group()
    point.add_argument("--threshold", type=fraction, metavar="T", help="policy threshold in [0, 1] (higher spends more)")
    point.add_argument("--budget", type=positive_float, metavar="COST",
                       help="mean cost per video to stay within, in the run's unit (GFLOPs; ms for a run fitted on [ms] costs)")
    p.add_argument("--json", action="store_true", help="print a JSON list of per-video results")
    add_placement_flags(p, "the members' forward passes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from condsel.pool.config import RANDOM_WEIGHTS_NOTE
    from condsel.pool.predict import predict_video, warm_up
    from condsel.pool.device import Placement
    from condsel.pool.run_dir import load_run
    from condsel.video.decode import VideoDecodeError

    loaded = load_run(args.run, placement=Placement.parse(args.device, args.precision))
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
        print(f"{loaded.policy.name} policy, threshold {threshold:.3f}; "
              "GFLOPs = multiply-adds per video (every member run + the policy)"
              + ("; ms = profiled forward ms of the members run" if loaded.cost_unit == "ms" else "")
              + (f"; forward passes in {loaded.placement.precision} (autocast) on {loaded.placement.name}"
                 if loaded.placement.reduced else ""))
        if loaded.random_weights:
            print(f"WARNING: {RANDOM_WEIGHTS_NOTE}")
        for r in results:
            if "error" in r:
                print(f"{r['video']}: ERROR {r['error']}")
            else:
                print(f"{r['video']}: {r['label']} ({r['score']:.3f}) by {r['model']} (ran {' + '.join(r['members'])}), "
                      f"{r['gflops']:.4f} GFLOPs" + (f" ({r['ms']:.2f} ms profiled)" if "ms" in r else "")
                      + f", {1000 * r['seconds']:.1f} ms wall")
    failed = sum("error" in r for r in results)
    if failed:
        print(f"condsel predict: {failed} of {len(results)} videos failed", file=sys.stderr)
    return 1 if failed else 0

