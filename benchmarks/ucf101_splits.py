"""The README's UCF101 results table: `condsel table` on splits 1-3, all five models, backbone mv.

    python benchmarks/ucf101_splits.py [--data ../shared/data/ucf101_scores] [--out out/ucf101_splits]

Runs the public `condsel table` command once per split (same defaults, no
per-split tuning) and prints a markdown table of the headline figures with
their bootstrap 95% CIs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from condsel.datasets.ucf101 import ucf101_score_files
from condsel.cli import main as condsel
from condsel.selection.evaluation.document import Headline, load_summary

ROOT = Path(__file__).resolve().parents[1]


def _ci(head: Headline, key: str, spec: str) -> str:
    c = (head.ci95 or {}).get(key) or {}
    return f" [{c['low']:{spec}}, {c['high']:{spec}}]" if c.get("low") is not None else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ucf101_scores")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "ucf101_splits")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="further `condsel table` flags")
    args = parser.parse_args()
    rows = []
    for split in (1, 2, 3):
        out = args.out / f"split{split}"
        argv = ["table", "--backbone", "mv", "--out", str(out), *args.extra]
        for name, path in ucf101_score_files(args.data, split).items():
            argv += ["--scores", f"{name}={path}"]
        if condsel(argv) != 0:
            raise SystemExit(f"condsel table failed on split {split}")
        doc = load_summary(out / "summary.json")
        head = doc.headline
        rows.append(
            f"| {split} | {doc.models['mv']['top1']:.1f} | {head.best_accuracy:.1f} | {head.best_gflops:.0f} "
            f"| {head.gflops_ratio_to_match_best:.3f}{_ci(head, 'gflops_ratio_to_match_best', '.3f')} "
            f"| {head.accuracy_gain_at_best_gflops:+.2f}{_ci(head, 'top1_gain_at_best_gflops', '+.2f')} "
            f"| {head.oracle_gap_closed:.3f}{_ci(head, 'oracle_gap_closed', '.3f')} "
            f"| {doc.curves.oracle[-1]['top1']:.1f} |"
        )
    print()
    print("| split | mv top-1 | iframe top-1 | iframe GFLOPs | GFLOPs to match iframe, x iframe [95% CI] "
          "| top-1 gain at <= iframe GFLOPs [95% CI] | oracle gap closed [95% CI] | oracle top-1 |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
