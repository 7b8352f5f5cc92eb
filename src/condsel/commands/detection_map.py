"""``condsel detection-map``: ActivityNet-rule detection mAP of a results file."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "detection-map",
        help="detection mAP (ActivityNet rules) of ActivityNet-layout results",
        description="Per-class AP and mAP at each tIoU threshold, ActivityNet rules: detections ranked by "
        "score, each matched to the unmatched GT segment of its video and class with the highest tIoU >= "
        "the threshold; all-point interpolated AP; mAP over the GT classes of the subset (AP 0 without "
        "detections). Detections in videos absent from the GT subset count as false positives.",
    )
    p.add_argument("--gt", required=True, help="ground truth: ActivityNet-layout json ('database'), a W-TALC "
                   "annotation folder, or MultiThumos' multithumos.json")
    p.add_argument("--pred", required=True, help='results json: {"results": {video: [{"label", "segment": [s, e], "score"}]}}')
    p.add_argument("--subset", default="test", help="GT subset to evaluate (default: test; MultiThumos: testing)")
    p.add_argument("--tiou", default="0.1:0.7:0.1", help="thresholds start:stop:step (stop included) or a comma "
                   "list (default: 0.1:0.7:0.1, THUMOS'14; MultiThumos uses 0.1:0.5:0.1)")
    p.add_argument("--ambiguous", metavar="FILE", help="THUMOS Ambiguous_test.txt: drop detections overlapping "
                   "an ambiguous segment of their video (off by default)")
    p.add_argument("--json", action="store_true", help='print {"tiou": [...], "map": [...], "average_map": x} (percent)')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from condsel.datasets.thumos import load_ambiguous, load_ground_truth
    from condsel.localization.detection_map import (
        detection_map,
        drop_ambiguous,
        load_results,
        parse_tiou,
    )

    tiou = parse_tiou(args.tiou)
    gt = load_ground_truth(args.gt)
    detections = load_results(args.pred)
    if args.ambiguous:
        detections = drop_ambiguous(detections, load_ambiguous(args.ambiguous))
    result = detection_map(gt, detections, tiou, subset=args.subset)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print("mAP in percent, ActivityNet rules")
    for t, m in zip(result.tiou, result.map):
        print(f"  tIoU {t:.2f}: {m:6.2f}")
    print(f"  average: {result.average_map:6.2f}  ({len(result.classes)} classes, subset {args.subset})")
    return 0
