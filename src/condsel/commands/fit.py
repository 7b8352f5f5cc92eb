"""``condsel fit``: fit a selection policy on a pool's extraction store and write a run directory."""

from __future__ import annotations

import argparse

from condsel._argtypes import fraction, int_at_least, nonnegative_int, positive_float

DESCRIPTION = """\
Fit a selection policy on every video of STORE (written by `condsel extract
--pool POOL.toml`) and write RUNDIR, which `condsel predict`, `condsel serve`,
`condsel report` and `condsel analyze` accept as they accept the demo's run.

The operating point is chosen on out-of-fold predictions of --folds-fold
cross-validation (never on in-sample ones): --budget GFLOPS takes the most
accurate point whose mean GFLOPs per video stay within the budget;
--threshold T takes T; neither takes the cheapest point that reaches the best
single member's accuracy. RUNDIR/run.json records that point with its
expected GFLOPs and accuracy from cross-validation, the calibration curve
(for `predict --budget`), the class names and the store's digest;
RUNDIR/pool.toml is POOL with every checkpoint resolved and sha256-pinned;
RUNDIR/policy/ the fitted policy; RUNDIR/provenance.json the commands and
versions.

--policy NAME: selector (the paper's: the backbone always runs, an MLP picks
one member), cascade, learned_cascade, ensemble_selector (see
docs/policies.md). --policy best (needs --budget) is the recommended policy
at the budget: every policy is cross-fitted and the policy and threshold most
accurate within the budget out of fold are kept; the expected figures are
those of that choice made and measured held out (nested cross-validation),
so the maximum over policies does not flatter them.

Every member of POOL needs a checkpoint: one without is an error naming it.
--random-weights allows random initialisation, for latency benchmarks only;
the run then says so in run.json and in every prediction.
GFLOPs are multiply-adds (the X3D/fvcore convention).
"""


def register(sub) -> None:
    p = sub.add_parser("fit", help="fit a selection policy on an extraction store; write a run directory for predict/serve",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pool", required=True, metavar="POOL.toml", help="the pool config the store was extracted with")
    p.add_argument("--store", required=True, metavar="STORE", help="the store written by condsel extract")
    p.add_argument("--policy", default="selector", metavar="NAME",
                   help="a policy of condsel.selection.method.policies (selector, cascade, ...; default: selector), or best")
    point = p.add_mutually_exclusive_group()
    point.add_argument("--budget", type=positive_float, metavar="GFLOPS", help="mean GFLOPs per video to stay within")
    point.add_argument("--threshold", type=fraction, metavar="T", help="a fixed operating threshold in [0, 1]")
    p.add_argument("--costs", metavar="F.toml", help="[gflops] per member, overriding the counted costs")
    p.add_argument("--folds", type=int_at_least(2), default=5, help="cross-validation folds for the operating point (default: 5)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed for the folds and the policy's training (default: 0)")
    p.add_argument("--random-weights", action="store_true",
                   help="allow members without a checkpoint (latency benchmarks only; recorded in the run)")
    p.add_argument("--out", required=True, metavar="RUNDIR", help="the run directory to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from condsel._io import torch_threads
    from condsel.models.costs import load_costs_toml
    from condsel.pool.config import RANDOM_WEIGHTS_NOTE, load_pool_config
    from condsel.pool.fit import FitSettings, fit_run

    settings = FitSettings(policy=args.policy, budget=args.budget, threshold=args.threshold, folds=args.folds, seed=args.seed)
    pool = load_pool_config(args.pool)
    costs = load_costs_toml(args.costs) if args.costs else None
    with torch_threads(1):  # the policies' small networks run fastest on one thread
        root, result = fit_run(pool, args.store, args.out, settings, costs, args.random_weights)
    point = result.point
    metric = "map" if "map" in point else "top1"
    if args.policy == "best":
        for c in result.candidates.values():
            print(f"  {c['policy']:<18} out of fold at the budget: {c['gflops']:.4g} GFLOPs, {metric} {c[metric]:.2f}%")
    print(f"condsel fit: {result.policy.name} policy on {args.store} -> {root}")
    print(f"  operating point: threshold {point['threshold']:.3f}, expected {point['gflops']:.4g} GFLOPs/video, "
          f"{metric} {point[metric]:.2f}% ({result.folds}-fold cross-validation, out of fold)")
    if pool.members and any(m.checkpoint is None for m in pool.members):
        print(f"  WARNING: {RANDOM_WEIGHTS_NOTE}")
    return 0
