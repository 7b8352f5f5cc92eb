"""Speed of the threshold sweep: 1M samples x 8 models x 1000 thresholds.

The issue's target is <= 2 s on the 2-core development machine. Prints the
median of a few runs for the sweep of the accuracy and cost curves together.

    python benchmarks/sweep_speed.py [--samples 1000000] [--models 8] [--thresholds 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from condsel.selection.method.curves import selection_costs, sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--thresholds", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(args.models), size=args.samples)
    correct = rng.random((args.samples, args.models)) < np.linspace(0.5, 0.9, args.models)
    costs = selection_costs(np.geomspace(1, 50, args.models), 0.001)
    thresholds = np.linspace(0, 1, args.thresholds)
    values = np.stack([np.broadcast_to(costs, proba.shape), correct])
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        sweep(proba, values, thresholds)
        times.append(time.perf_counter() - start)
    print(f"sweep of {args.samples:,} samples x {args.models} models x {args.thresholds} thresholds "
          f"(accuracy and cost curves): median {np.median(times):.2f} s, best {min(times):.2f} s over {args.repeats} runs")


if __name__ == "__main__":
    main()
