"""``condsel thumos-gt``: W-TALC's THUMOS'14 npy annotations -> ActivityNet-layout json."""

from __future__ import annotations

import argparse

from condsel._argtypes import nonnegative_float


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "thumos-gt",
        help="convert W-TALC THUMOS'14 annotations to an ActivityNet-layout ground-truth json",
        description="Read a W-TALC annotation folder (videoname/subset/classlist/labels/segments/duration .npy, "
        "the pickled files published by sujoyp/wtalc-pytorch, read without arbitrary unpickling) and write "
        '{"database": {video: {"subset", "duration", "annotations": [{"segment": [s, e], "label"}]}}}. '
        "Subset names are kept as W-TALC spells them (validation, test). With --compare, also report where "
        "another ground truth (e.g. BaSNet's gt_activitynet_format.json) differs.",
    )
    p.add_argument("--wtalc", required=True, help="W-TALC annotation folder (e.g. Thumos14reduced-Annotations)")
    p.add_argument("--out", required=True, help="output json (written atomically)")
    p.add_argument("--compare", metavar="GT", help="another ground truth to compare with (json or folder)")
    p.add_argument("--tolerance", type=nonnegative_float, default=1e-6, help="seconds within which segment times agree (default 1e-6)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from condsel.datasets.thumos import (
        activitynet_document,
        compare_ground_truths,
        load_ground_truth,
        load_wtalc,
    )
    from condsel._io import write_json

    gt = load_wtalc(args.wtalc)
    write_json(args.out, activitynet_document(gt))
    print(f"wrote {args.out}: {len(gt.videos)} videos, segments per subset {gt.segment_counts()}")
    if args.compare:
        comparison = compare_ground_truths(gt, load_ground_truth(args.compare), args.tolerance)
        print(f"compared with {args.compare}:")
        for line in comparison.describe():
            print("  " + line)
    return 0
