"""``condsel extract``: run a pool over a manifest into a resumable store, on one or many processes."""

from __future__ import annotations

import argparse
import sys

from condsel._argtypes import add_placement_flags, nonnegative_int, positive_float, positive_int

DESCRIPTION = """\
Run every model of a pool over the videos of a manifest and store, per video,
each model's scores (aggregated over its test views) and the backbone's
pooled features, ready for `condsel table --store STORE`.

POOL is a pool config TOML (see docs/your_pool.md and `condsel zoo --help`)
or a run directory written by `condsel fit` or `condsel demo`
(DIR/synthetic/run). A member without a checkpoint is an error naming it;
--random-weights initialises it randomly instead, for latency benchmarks
only, and the store records that its numbers mean nothing. The manifest is a
CSV with the columns path,label (paths relative to the manifest, labels class
names or indices), as `condsel synth` writes it.

Each video is decoded once for the whole pool, in --workers DataLoader
processes, while the main process runs the models. Every finished video is
written atomically: re-running the same command resumes where a killed run
stopped, and never stores a video twice. Files that cannot be read (empty,
truncated, not a video, unknown codec, missing) and unreadable manifest rows
are recorded in STORE/failures and skipped; the exit status is 1 if any
video of the manifest failed.

On several processes or machines, start it with torchrun; the manifest is
sharded by rank and the store is the same as from one process:
  torchrun --standalone --nproc-per-node 2 -m condsel extract --pool P --manifest M --out S
  torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d \\
      --rdzv-endpoint HOST:29400 --rdzv-id JOB -m condsel extract ...
GPUs use NCCL, CPUs gloo. STORE must be on a file system all nodes share.
--device and --precision are spelt as for `predict` and `serve`; a store
made with --precision bf16 or fp16 records it (STORE/store.json settings), and
resuming it needs the same precision.
GFLOPs are multiply-adds (the X3D/fvcore convention).
"""


def register(sub) -> None:
    p = sub.add_parser("extract", help="run a pool over a manifest into a resumable store (torchrun-shardable)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pool", required=True, metavar="POOL", help="a pool config .toml, or a run directory (condsel fit / demo)")
    p.add_argument("--manifest", required=True, metavar="CSV", help="path,label CSV of the videos")
    p.add_argument("--out", required=True, metavar="STORE", help="store directory (created, or resumed)")
    p.add_argument("--classes", metavar="FILE", help="class names, one a line, for a pool config (labels may then be names)")
    p.add_argument("--workers", type=nonnegative_int, default=2, help="decoding processes per rank (default: 2; 0 decodes in the main process)")
    p.add_argument("--per-clip", type=positive_float, metavar="SECONDS",
                   help="untrimmed videos: score consecutive windows of SECONDS, each with the full test views")
    p.add_argument("--aggregate", choices=["softmax", "logits"], default="softmax",
                   help="how views are combined: mean softmax as PySlowFast (default), or mean logits")
    p.add_argument("--save-views", action="store_true", help="also store every view's logits")
    add_placement_flags(p, "the models' forward passes", device_default=None,
                        device_help="default: this rank's GPU if there is one, else cpu")
    p.add_argument("--threads", type=positive_int, help="intra-op threads per process (default: OMP_NUM_THREADS if set, "
                   "as torchrun does, else this process's share of the cores minus --workers, at least 1)")
    p.add_argument("--random-weights", action="store_true",
                   help="allow members without a checkpoint, randomly initialised (latency benchmarks only; "
                        "the store records it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from condsel.extract import ExtractSettings, extract, load_pool, read_manifest
    from condsel.extract.distributed import distributed
    from condsel.pool.config import RANDOM_WEIGHTS_NOTE
    from condsel.pool.device import Placement

    torch.set_num_threads(_intra_op_threads(args.threads, args.workers))
    # checked (exit 2 naming the flag) before any work starts; without --device, a rank's GPU if there is one
    checked = Placement.parse(args.device or ("cuda" if torch.cuda.is_available() else "cpu"), args.precision)
    if args.device is not None:
        args.device = checked.name
    settings = ExtractSettings(aggregate=args.aggregate, per_clip_seconds=args.per_clip, save_views=args.save_views,
                               precision=args.precision)
    # everything that can be wrong with the inputs is found before any work starts
    pool = load_pool(args.pool, args.classes, args.random_weights)
    manifest = read_manifest(args.manifest, pool.num_classes, pool.class_names)
    with distributed(args.device) as ctx:
        placement = Placement(ctx.device, settings.precision)  # fp16 on a CPU rank: exit 2 naming --precision
        for model in pool.models.values():
            placement.place(model)
        report = extract(pool, manifest, args.out, ctx, settings, args.workers, progress=not args.no_progress)
        if ctx.is_main:
            _print_summary(report, args, ctx.world_size)
            if pool.random_weights:
                print(f"  WARNING: {RANDOM_WEIGHTS_NOTE}")
    return 0 if report.ok else 1


def _intra_op_threads(requested: int | None, workers: int) -> int:
    """Threads for inference that leave a core to each decoding worker.

    On a busy CPU, intra-op threads that outnumber the free cores spin in
    OpenMP barriers: on 2 cores, 2 threads beside one decoding worker ran
    4x slower than 1 thread (docs/extract.md).
    """
    import os

    import torch

    if requested:
        return requested
    if "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()
    share = len(os.sched_getaffinity(0)) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, share - workers)


def _print_summary(report, args, world_size: int) -> None:
    rate = report.processed / report.seconds if report.seconds > 0 else 0.0
    print(f"condsel extract: {report.videos} entries in {args.manifest} -> {args.out}")
    print(f"  stored {report.stored} ({report.stored - report.stored_before} this run, {report.stored_before} before)")
    print(f"  rank 0 of {world_size}: {report.processed} videos in {report.seconds:.1f} s ({rate:.2f} videos/s)")
    if report.failures:
        print(f"  FAILED {len(report.failures)} (recorded in {args.out}/failures, retried on the next run):", file=sys.stderr)
        for f in report.failures[:20]:
            print(f"    [{f.stage}] {f.error}", file=sys.stderr)
        if len(report.failures) > 20:
            print(f"    ... and {len(report.failures) - 20} more: condsel inspect {args.out}", file=sys.stderr)
