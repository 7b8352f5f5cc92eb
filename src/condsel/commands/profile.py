"""``condsel profile``: measure each pool member's latency here and write a costs file in milliseconds."""

from __future__ import annotations

import argparse

from condsel._argtypes import add_placement_flags, positive_int

DESCRIPTION = """\
Measure each member of a pool (POOL.toml, or the pool of a run directory) on
this machine: the forward pass per video (all its test views, normalisation
and view aggregation included) at each --batch size, after a warm-up, as the
median and 90th percentile over --repeats; with --videos, decoding (once per
video for the whole pool) and each member's view sampling per video, apart.

Writes OUT, a costs file with an [ms] table (median forward ms per video at
the first --batch size) that `condsel table`, `fit`, `predict` and `serve`
accept with --costs, and a [profile] table: hardware, device, precision,
torch version, threads, batch sizes, repeats and every statistic.
--random-weights profiles a pool before it has checkpoints (latency does not
depend on the weights). --device and --precision are spelt as for `predict`
and `serve`: profile where and how you will serve.
"""


def _batches(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected batch sizes like 1,4,8") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: every batch size must be >= 1")
    return values


def register(sub) -> None:
    p = sub.add_parser("profile", help="measure each pool member's latency here; write a [ms] costs file",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--pool", metavar="POOL.toml", help="a pool config")
    source.add_argument("--run", metavar="RUNDIR", help="a run directory (its pool.toml and weights)")
    p.add_argument("--batch", type=_batches, default=[1], metavar="1,4,8", help="batch sizes in videos (default: 1)")
    p.add_argument("--threads", type=positive_int, default=1, metavar="N", help="torch threads (default: 1)")
    add_placement_flags(p, "the forward passes")
    p.add_argument("--videos", nargs="+", default=[], metavar="V", help="video files to time decoding and view sampling on")
    p.add_argument("--repeats", type=positive_int, default=10, metavar="N", help="timed repeats per measurement (default: 10)")
    p.add_argument("--random-weights", action="store_true", help="allow members without a checkpoint")
    p.add_argument("--out", required=True, metavar="costs.toml", help="the costs file to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import torch

    from condsel._io import torch_threads
    from condsel.pool.config import build_pool, load_pool_config
    from condsel.pool.device import Placement
    from condsel.pool.profile import hardware, profile_pool, write_costs_ms
    from condsel.pool.run_dir import load_run

    placement = Placement.parse(args.device, args.precision)
    if args.run:
        loaded = load_run(args.run)
        pool, models = loaded.pool, loaded.models
        pool = replace(pool, members=tuple(m for m in pool.members if m.name in models))
    else:
        pool = load_pool_config(args.pool)
        models = build_pool(pool, args.random_weights)
    with torch_threads(args.threads), torch.inference_mode():
        measured = profile_pool(pool, models, args.batch, args.repeats, args.videos, placement, progress=True)
        where = hardware(placement.device)
    conditions = {"device": placement.device.type, "precision": placement.precision, "hardware": where, "torch": torch.__version__, "threads": args.threads,
                  "batch": args.batch[0], "batches": args.batch, "repeats": args.repeats,
                  "source": str(args.run or args.pool), "statistic": "median over repeats, per video"}
    path = write_costs_ms(args.out, measured, conditions)
    print(f"condsel profile: {len(measured['ms'])} member(s) on {where} in {placement.precision}, torch {torch.__version__} -> {path}")
    for name, stats in measured["forward"].items():
        cells = ", ".join(f"batch {b.split('_')[1]}: {s['median_ms']:.2f} ms (p90 {s['p90_ms']:.2f})" for b, s in stats.items())
        print(f"  {name:<12} forward per video  {cells}")
    if measured["decode"] is not None:
        d = measured["decode"]
        print(f"  decoding per video (whole pool): {d['median_ms']:.2f} ms (p90 {d['p90_ms']:.2f}); view sampling: "
              + ", ".join(f"{n} {s['median_ms']:.2f} ms" for n, s in measured["views"].items()))
    return 0
