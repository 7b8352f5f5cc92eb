"""The README's policy tables: recommended front vs the paper's selector on UCF101 splits 1-3, with 95% CIs.

    python benchmarks/ucf101_policies.py [--data ../shared/data/ucf101_scores] [--pool7 DIR] [--out out/ucf101_policies]

Runs the public `condsel table` (all policies, 5 folds, seed 0, defaults, no
per-split tuning) once per split and pool, and prints markdown tables: at a
few budgets, the recommended front and the paper's selector (backbone chosen
on the training folds, thresholds chosen by the same nested protocol), each
with the mean GFLOPs reached and top-1 [95% bootstrap CI], next to the hull of
static choices there. Five-model pool: the DMC-Net/CoViAR score files.
Seven-network pool: ``--pool7 DIR`` holding pool7_split{1,2,3}.npz tables
(the five plus SeqVLAD RGB and flow, costs attached), or skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from condsel.cli import main as condsel
from condsel.datasets.ucf101 import ucf101_score_files
from condsel.selection.curves import curve_at

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = (60.0, 80.0, 150.0, 288.0)


def _cell(point: dict) -> str:
    ci = point.get("ci95") or {}
    interval = f" [{ci['low']:.1f}, {ci['high']:.1f}]" if ci else ""
    return f"{point['top1']:.1f}{interval} @ {point['gflops']:.0f}"


def _rows(summary: dict, split: int) -> list[str]:
    hull = summary["static_hull"]
    hc, ha = np.array([p["gflops"] for p in hull]), np.array([p["top1"] for p in hull])
    rows = []
    for budget in BUDGETS:
        rec = next(p for p in summary["recommended"] if abs(p["budget"] - budget) < 1e-6)
        sel = next(p for p in summary["selector_budgets"] if abs(p["budget"] - budget) < 1e-6)
        at = curve_at(hc, ha, np.array([rec["gflops"]]))[0]
        rows.append(f"| {split} | {budget:.0f} | {_cell(rec)} ({rec['policy']}) | {_cell(sel)} | {at:.1f} |")
    return rows


def _run(source: list[str], out: Path) -> dict:
    argv = ["table", *source, "--policies", "all", "--folds", "5", "--seed", "0", "--out", str(out)]
    for budget in BUDGETS:
        argv += ["--budget", str(budget)]
    if condsel(argv) != 0:
        raise SystemExit(f"condsel table failed for {out}")
    return json.loads((out / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ucf101_scores")
    parser.add_argument("--pool7", type=Path, help="directory with pool7_split{1,2,3}.npz")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "ucf101_policies")
    args = parser.parse_args()
    pools = {"5 models": lambda s: [a for n, p in ucf101_score_files(args.data, s).items() for a in ("--scores", f"{n}={p}")]}
    if args.pool7:
        pools["7 networks"] = lambda s: ["--table", str(args.pool7 / f"pool7_split{s}.npz")]
    for pool, source in pools.items():
        rows = []
        for split in (1, 2, 3):
            rows += _rows(_run(source(split), args.out / pool.replace(" ", "_") / f"split{split}"), split)
        print(f"\n{pool}: top-1 % [95% CI] @ mean GFLOPs reached")
        print("| split | budget | recommended (policy) | paper's selector | static hull at that cost |")
        print("|---|---|---|---|---|")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
