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
one member), cascade, ensemble_selector, static (one member
or fused subset for every video, or a seeded per-video mix of two), routing
(the next member chosen from the outputs seen so far; see docs/policies.md).
--policy best (needs --budget) is the recommended policy
at the budget: every policy is cross-fitted and the policy and threshold most
accurate within the budget out of fold are kept; the expected figures are
those of that choice made and measured held out (nested cross-validation),
so the maximum over policies does not flatter them.

Every member of POOL needs a checkpoint: one without is an error naming it.
--random-weights allows random initialisation, for latency benchmarks only;
the run then says so in run.json and in every prediction.
GFLOPs are multiply-adds (the X3D/fvcore convention). --costs with an [ms]
table (from `condsel profile`) fits in measured milliseconds instead: the
budget, the curve, calibration.png and run.json (cost_unit "ms", points keyed
"ms") are then in ms, and predictions report both "gflops" and "ms".
"""


def register(sub) -> None:
    p = sub.add_parser("fit", help="fit a selection policy on an extraction store; write a run directory for predict/serve",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pool", required=True, metavar="POOL.toml", help="the pool config the store was extracted with")
    p.add_argument("--store", required=True, metavar="STORE", help="the store written by condsel extract")
    p.add_argument("--policy", default="selector", metavar="NAME",
                   help="a policy of condsel.selection.method.policies (selector, cascade, ...; default: selector), or best")
    point = p.add_mutually_exclusive_group()
    point.add_argument("--budget", type=positive_float, metavar="COST", help="mean GFLOPs (or ms, with --costs [ms]) per video to stay within")
    point.add_argument("--threshold", type=fraction, metavar="T", help="a fixed operating threshold in [0, 1]")
    p.add_argument("--costs", metavar="F.toml",
                   help="[gflops] per member overriding the counted costs, or [ms] for every member (condsel profile): "
                        "the policy, its curve and --budget then work in ms")
    p.add_argument("--folds", type=int_at_least(2), default=5, help="cross-validation folds for the operating point (default: 5)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed for the folds and the policy's training (default: 0)")
    p.add_argument("--random-weights", action="store_true",
                   help="allow members without a checkpoint (latency benchmarks only; recorded in the run)")
    p.add_argument("--out", required=True, metavar="RUNDIR", help="the run directory to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from condsel._io import torch_threads
    from condsel.extract.pool import check_store_matches
    from condsel.extract.store import Store, load_store
    from condsel.models.costs import load_costs_toml
    from condsel.pool.config import RANDOM_WEIGHTS_NOTE, check_weights, load_pool_config
    from condsel.pool.fit import FitSettings, describe_fit, fit_policy, in_unit, table_digest
    from condsel.pool.run_dir import save_run
    from condsel.report.plots import plot_operating_curve
    from condsel.sources import with_given_costs

    settings = FitSettings(policy=args.policy, budget=args.budget, threshold=args.threshold, folds=args.folds, seed=args.seed)
    pool = load_pool_config(args.pool)
    check_weights(pool, args.random_weights)
    pool = pool.pinned()
    store = Store.open(args.store)
    check_store_matches(pool, store)
    table = load_store(args.store)
    costs = load_costs_toml(args.costs) if args.costs else None
    if costs is not None:
        table = with_given_costs(table, table.gflops, costs, args.costs)
    unit = costs.unit if costs is not None else "gflops"
    label = costs.label if costs is not None else "GFLOPs"  # the engine keys every cost "gflops"; this is its unit
    if table.class_names is None:
        table = replace(table, class_names=[str(c) for c in range(pool.num_classes)])
    with torch_threads(1):  # the policies' small networks run fastest on one thread
        result = fit_policy(pool, table, settings)
    operating_point, notes = describe_fit(table, settings, result, label)
    notes = {"store": {"path": str(Path(args.store).resolve()), "digest": table_digest(table),
                       "identity": store.meta["identity"], "videos": int(table.num_samples),
                       # a store extracted at reduced precision (extract --precision) says so in the run too
                       **{k: v for k, v in store.meta["settings"].items() if k == "precision"}}, **notes}
    point = result.point
    plot_operating_curve(result.curve, notes["single_members"], point, Path(args.out) / "calibration.png",
                         result.policy.name,
                         title=f"{result.policy.name} policy on {Path(args.store).name}: {result.folds}-fold CV, out of fold",
                         unit=unit)
    if unit == "ms":  # the engine names every cost "gflops"; what is written names the unit it is in
        operating_point = in_unit(operating_point, unit)
        notes["single_members"] = {m: in_unit(v, unit) for m, v in notes["single_members"].items()}
        if "best" in notes:
            notes["best"]["candidates"] = [in_unit(c, unit) for c in notes["best"]["candidates"]]
    root = save_run(args.out, pool, result.policy, list(table.class_names), point["threshold"],
                    [in_unit(p, unit) for p in result.curve], store.meta["settings"]["aggregate"],
                    operating_point=operating_point, notes=notes, cost_unit=unit)
    metric = "map" if "map" in point else "top1"
    if args.policy == "best":
        for c in result.candidates.values():
            print(f"  {c['policy']:<18} out of fold at the budget: {c['gflops']:.4g} {label}, {metric} {c[metric]:.2f}%")
    print(f"condsel fit: {result.policy.name} policy on {args.store} -> {root}")
    print(f"  operating point: threshold {point['threshold']:.3f}, expected {point['gflops']:.4g} {label}/video, "
          f"{metric} {point[metric]:.2f}% ({result.folds}-fold cross-validation, out of fold)")
    if pool.members and any(m.checkpoint is None for m in pool.members):
        print(f"  WARNING: {RANDOM_WEIGHTS_NOTE}")
    return 0
