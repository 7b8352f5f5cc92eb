"""Issue 28 item 2: learned_cascade's stop-rule targets against the plain stacked cascade, on UCF101 split 1.

    python benchmarks/learned_cascade_targets.py POOL TARGET[:TIE_WEIGHT] ...
    python benchmarks/learned_cascade_targets.py 7 prefix gain:0.1 gain:0 gain:0.3

Cross-fits (5 folds, seed 0, nested) each learned_cascade target variant and
cascade_stacked, then prints per budget the best held-out top-1 within it and
the training-fold estimate (mean over outer folds of the inner curves, the
figure a choice between targets may read).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from condsel.selection.evaluation.comparison import THRESHOLDS
from condsel.selection.evaluation.crossfit import fit_all, held_out_curve, inner_curves
from condsel.selection.evaluation.evaluate import fold_ids
from condsel.selection.method.policies import POLICIES
from condsel.sources import resolve_table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from ucf101_policies import pool_sources  # noqa: E402

BUDGETS = (50, 60, 80, 100, 150, 288)


def best_within(costs: np.ndarray, values: np.ndarray, budget: float) -> float:
    ok = costs <= budget + 1e-9
    return float(values[ok].max()) if ok.any() else float("nan")


def main() -> None:
    pool, variants = int(sys.argv[1]), sys.argv[2:]
    src = pool_sources(ROOT.parent / "shared" / "data", pool, 1)
    table, _, _ = resolve_table(dict(a.split("=", 1) for a in src[1::2]), None, ROOT / "benchmarks" / "ucf101_pool7_costs.toml")
    folds = fold_ids(table, 5, 0)
    requests = {"cascade_stacked": POLICIES["cascade"](fusion="stacked")}
    for v in variants:
        target, tie = (v.split(":") + ["0.1"])[:2]
        requests[f"learned_cascade {v}"] = POLICIES["learned_cascade"](target=target, tie_weight=float(tie))
    start = time.perf_counter()
    fits = fit_all(table, folds, requests, nested=True, workers=2)
    print(f"{pool} models: fits {time.perf_counter() - start:.1f} s; top-1 % at <= budget GFLOPs: held-out | training folds")
    inner = inner_curves(fits, table, THRESHOLDS, 2)
    for name in fits:
        costs, values = held_out_curve(fits[name], table, THRESHOLDS)
        train = [np.mean([best_within(*inner[k][name], b) for k in inner]) for b in BUDGETS]
        print(f"{name:>26}: " + " ".join(f"{b}:{best_within(costs, values, b):.2f}" for b in BUDGETS)
              + " | " + " ".join(f"{x:.2f}" for x in train))


if __name__ == "__main__":
    main()
