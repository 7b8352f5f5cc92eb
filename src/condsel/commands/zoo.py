"""``condsel zoo``: the built-in models, their default input and GFLOPs per view."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "zoo",
        help="list the model zoo with default inputs and GFLOPs per view",
        description="List the built-in models (X3D-XS/S/M/L, I3D RGB/flow, ResNet-18/152, EfficientNet-B0) "
        "with their default input (frames x crop^2, sampling stride) and their cost per view, counted from "
        "the real graph at that input. GFLOPs = 1e9 multiply-adds (one multiply-add = one FLOP, as in the "
        "X3D paper and fvcore). Frame models (ResNet, EfficientNet) cost frames x their per-frame figure. "
        "Optical-flow extraction for i3d_flow is not included (see docs/zoo.md).",
    )
    p.add_argument("--json", action="store_true", help='print a JSON list of {"name", "gflops", "frames", "crop", ...}')
    p.add_argument(
        "--pool", metavar="TOML", help="instead, list a pool config's members with views and GFLOPs per video"
    )
    p.add_argument("--random-weights", action="store_true",
                   help="with --pool: allow members without a checkpoint (latency and cost checks only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from condsel import models
    from condsel.models.costs import FLOP_CONVENTION
    from condsel.report.text import format_columns

    if args.pool:
        return _run_pool(args)
    names = tqdm(models.list_models(), desc="counting FLOPs", leave=False, disable=None)
    rows = [models.describe(name) for name in names]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"Model zoo; {FLOP_CONVENTION}; cost per view at the default input")
    cells = [[r["name"], f"{r['frames']} x {r['crop']}^2", r["stride"], r["channels"], f"{r['gflops']:.3f}",
              "-" if r["published_gflops"] is None else f"{r['published_gflops']:.2f}"] for r in rows]
    print("\n".join(format_columns(["name", "input (T x crop^2)", "stride", "ch", "GFLOPs", "published"], cells, right={2, 3, 4, 5})))
    print("Frame models run per frame (cost = frames x per-frame GFLOPs); i3d_flow excludes the optical flow itself.")
    return 0


def _run_pool(args: argparse.Namespace) -> int:
    from condsel.models.costs import FLOP_CONVENTION
    from condsel.pool.config import RANDOM_WEIGHTS_NOTE, check_weights, load_pool_config, uses_random_weights
    from condsel.report.text import format_columns

    pool = load_pool_config(args.pool)
    check_weights(pool, args.random_weights, files=False)  # counting costs needs no weights, but a pool without them is unusable
    random_weights = uses_random_weights(pool)
    rows = [
        {
            "name": m.name,
            "arch": m.arch,
            "backbone": m.name == pool.backbone,
            "frames": m.clip.num_frames,
            "crop": m.clip.size,
            "views": m.views,
            "gflops_per_view": round(m.gflops_per_view, 4),
            "gflops_per_video": round(m.gflops_per_video, 4),
            "checkpoint": None if m.checkpoint is None else str(m.checkpoint),
            "random_weights": m.checkpoint is None,
        }
        for m in pool.members
    ]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"Pool {pool.path}; {FLOP_CONVENTION}")
    if random_weights:
        print(f"WARNING: {RANDOM_WEIGHTS_NOTE}")
    cells = [[r["name"], r["arch"], f"{r['frames']}x{r['crop']}^2", r["views"], f"{r['gflops_per_view']:.3f}",
              f"{r['gflops_per_video']:.2f}", "(backbone)" if r["backbone"] else ""] for r in rows]
    print("\n".join(format_columns(["member", "arch", "input", "views", "GFLOPs/view", "GFLOPs/video", ""], cells, right={3, 4, 5})))
    return 0
