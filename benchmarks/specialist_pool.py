"""Issue 28's generated pool where order matters: `routing` against every fixed-order cascade, held out.

    python benchmarks/specialist_pool.py [--videos 8000] [--classes 20] [--folds 5] [--seed 0]

The pool (:func:`condsel.selection.data.generated.specialist_pool`): a cheap
generalist, two equal-cost specialists each strong on half of the classes
(and sure of a wrong class on the other half), a costly generalist. Every
policy is cross-fitted on the same folds (5, seed 0) and routes only samples
it never saw; the cascades search every order of the four members, with mean
and with stacked fusion. Prints each policy's best held-out top-1 at or
below a few budgets, among them issue 28's: the cost of the cheap generalist
plus one specialist, where `routing` must lead the best fixed order by >= 5 points.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from condsel._io import torch_threads
from condsel.selection.data.generated import SPECIALIST_COSTS, specialist_pool
from condsel.selection.evaluation.crossfit import fit_all, held_out_curve
from condsel.selection.evaluation.evaluate import fold_ids
from condsel.selection.method.policies import CascadePolicy, RoutingPolicy, StaticPolicy

THRESHOLDS = np.linspace(0.0, 1.0, 201)
TARGET_BUDGET = SPECIALIST_COSTS["generalist_small"] + SPECIALIST_COSTS["specialist_a"]
BUDGETS = (15.0, TARGET_BUDGET, 40.0, 60.0)


def best_within(costs: np.ndarray, values: np.ndarray, budget: float) -> float:
    within = costs <= budget + 1e-9
    return float(values[within].max()) if within.any() else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=8000)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table = specialist_pool(args.videos, args.classes, args.seed)
    folds = fold_ids(table, args.folds, args.seed)
    requests = {
        "routing": RoutingPolicy(),  # target "right"
        "routing_auto": RoutingPolicy(target="auto"),
        "routing_gain": RoutingPolicy(target="gain"),
        "cascade": CascadePolicy(),
        "cascade_stacked": CascadePolicy(fusion="stacked"),
        "static": StaticPolicy(),
    }
    start = time.perf_counter()
    with torch_threads(1):
        fits = fit_all(table, folds, requests, nested=False)
    curves = {name: held_out_curve(f, table, THRESHOLDS) for name, f in fits.items()}
    print(f"{args.videos} videos, {args.classes} classes, costs {SPECIALIST_COSTS}, {args.folds} folds, seed {args.seed} "
          f"({time.perf_counter() - start:.1f} s)")
    print("| policy | " + " | ".join(f"<= {b:g} GFLOPs" for b in BUDGETS) + " |")
    print("|---|" + "---|" * len(BUDGETS))
    for name, (costs, values) in curves.items():
        print(f"| {name} | " + " | ".join(f"{best_within(costs, values, b):.2f}" for b in BUDGETS) + " |")
    fixed = max(best_within(*curves[n], TARGET_BUDGET) for n in ("cascade", "cascade_stacked", "static"))
    routed = best_within(*curves["routing"], TARGET_BUDGET)
    chosen = [fit.policy.target_ for fit in fits["routing_auto"].outer.values()]
    print(f"at <= {TARGET_BUDGET:g} GFLOPs (small generalist + one specialist): routing {routed:.2f}%, best fixed order {fixed:.2f}%, "
          f"lead {routed - fixed:+.2f} points (target >= +5); target='auto' chose per fold: {chosen}")


if __name__ == "__main__":
    main()
