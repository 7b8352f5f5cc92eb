"""The README's policy tables: recommended front vs the paper's selector on UCF101 splits 1-3, with 95% CIs.

    python benchmarks/ucf101_policies.py [--data ../shared/data] [--pools 5 7] [--splits 1 2 3]
                                         [--costs benchmarks/ucf101_pool7_costs.toml | --derived-costs]
                                         [--out out/ucf101_policies]

Runs the public `condsel table` (all policies, 5 folds, seed 0, defaults, no
per-split tuning) once per split and pool, and prints markdown tables: at a
few budgets, the recommended front and the paper's selector (backbone chosen
on the training folds, thresholds chosen by the same nested protocol), each
with the mean GFLOPs reached and top-1 [95% bootstrap CI], next to the hull of
static choices there. Each run also prints issue 11's two bar figures: the
best held-out top-1 the recommended front reaches at <= 80 GFLOPs, and its
largest shortfall below the static hull over its budgets in [55, 300] GFLOPs.

Five-model pool: the DMC-Net/CoViAR score files (``ucf101_scores/``).
Seven-network pool: those five plus SeqVLAD RGB and flow, passed as scores in
list order (``NAME=SCORES:LIST``, ``ucf101_more/seqvlad/``). Costs: issue 11's
figures (``--costs``, default ``ucf101_pool7_costs.toml``), or the counts
derived from the architectures (``--derived-costs``; they differ only for
SeqVLAD, 51.65 and 58.53 instead of 51 and 53).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from condsel.cli import main as condsel
from condsel.datasets.ucf101 import ucf101_more_sources, ucf101_score_files
from condsel.selection.method.curves import curve_at
from condsel.selection.evaluation.document import SummaryDocument, load_summary

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = (60.0, 80.0, 150.0, 288.0)
BAR_BUDGET = 80.0  # issue 11: >= 91.5% top-1 at <= 80 GFLOPs
BAR_RANGE = (55.0, 300.0)  # issue 11: never > 0.5 points below the static hull here


def _cell(point: dict) -> str:
    ci = point.get("ci95") or {}
    interval = f" [{ci['low']:.1f}, {ci['high']:.1f}]" if ci else ""
    return f"{point['top1']:.1f}{interval} @ {point['gflops']:.0f}"


def _hull_at(doc: SummaryDocument, gflops: np.ndarray) -> np.ndarray:
    hull = doc.static_hull
    hc, ha = np.array([p["gflops"] for p in hull]), np.array([p["top1"] for p in hull])
    return curve_at(hc, ha, gflops)


def _rows(doc: SummaryDocument, split: int) -> list[str]:
    rows = []
    for budget in BUDGETS:
        rec = next(p for p in doc.recommended if abs(p["budget"] - budget) < 1e-6)
        sel = next(p for p in doc.selector_budgets if abs(p["budget"] - budget) < 1e-6)
        at = _hull_at(doc, np.array([rec["gflops"]]))[0]
        rows.append(f"| {split} | {budget:.0f} | {_cell(rec)} ({rec['policy']}) | {_cell(sel)} | {at:.1f} |")
    return rows


def bar_figures(doc: SummaryDocument) -> str:
    """Issue 11's bar figures for one run, from its held-out recommended front.

    The shortfall is measured against the static hull both at the cost each
    budget's point reached and, stricter, at the budget itself.
    """
    rec = doc.recommended
    within = [p for p in rec if p["gflops"] <= BAR_BUDGET + 1e-9]
    best = max(within, key=lambda p: p["top1"]) if within else None
    span = [p for p in rec if BAR_RANGE[0] <= p["budget"] <= BAR_RANGE[1]]
    top1 = np.array([p["top1"] for p in span])
    head = (f"best recommended top-1 at <= {BAR_BUDGET:.0f} GFLOPs: {best['top1']:.2f}% @ {best['gflops']:.1f} (budget {best['budget']:.1f})"
            if best else f"no recommended point at <= {BAR_BUDGET:.0f} GFLOPs")
    parts = [head]
    for where, key in (("the cost reached", "gflops"), ("the budget", "budget")):
        gaps = _hull_at(doc, np.array([p[key] for p in span])) - top1
        worst = int(np.argmax(gaps))
        parts.append(f"largest shortfall below the static hull at {where}, over the {len(span)} budgets in "
                     f"[{BAR_RANGE[0]:.0f}, {BAR_RANGE[1]:.0f}]: {gaps[worst]:+.2f} points at budget {span[worst]['budget']:.1f}")
    return "; ".join(parts) + " (negative = above the hull)"


def _run(source: list[str], costs: Path | None, out: Path) -> SummaryDocument:
    argv = ["table", *source, "--policies", "all", "--folds", "5", "--seed", "0", "--out", str(out)]
    if costs is not None:
        argv += ["--costs", str(costs)]
    for budget in BUDGETS:
        argv += ["--budget", str(budget)]
    if condsel(argv) != 0:
        raise SystemExit(f"condsel table failed for {out}")
    return load_summary(out / "summary.json")


def pool_sources(data: Path, pool: int, split: int) -> list[str]:
    """`condsel table` arguments that read one UCF101 pool's published score files."""
    sources = {name: str(path) for name, path in ucf101_score_files(data / "ucf101_scores", split).items()}
    if pool == 7:
        more = ucf101_more_sources(data / "ucf101_more", split)
        sources.update({name: more[name] for name in ("seqvlad_rgb", "seqvlad_flow")})
    return [arg for name, source in sources.items() for arg in ("--scores", f"{name}={source}")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--pools", type=int, nargs="+", choices=(5, 7), default=(5, 7))
    parser.add_argument("--splits", type=int, nargs="+", choices=(1, 2, 3), default=(1, 2, 3))
    costs = parser.add_mutually_exclusive_group()
    costs.add_argument("--costs", type=Path, default=ROOT / "benchmarks" / "ucf101_pool7_costs.toml")
    costs.add_argument("--derived-costs", action="store_true", help="use the architectures' derived counts")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "ucf101_policies")
    args = parser.parse_args()
    costs_file = None if args.derived_costs else args.costs
    label = "derived costs" if costs_file is None else f"costs {costs_file.name}"
    for pool in args.pools:
        rows, bars = [], []
        for split in args.splits:
            out = args.out / ("derived" if costs_file is None else "given") / f"{pool}_models" / f"split{split}"
            summary = _run(pool_sources(args.data, pool, split), costs_file, out)
            rows += _rows(summary, split)
            bars.append(f"split {split}: {bar_figures(summary)}")
        print(f"\n{pool} models, {label}: top-1 % [95% CI] @ mean GFLOPs reached")
        print("| split | budget | recommended (policy) | paper's selector | static hull at that cost |")
        print("|---|---|---|---|---|")
        print("\n".join(rows))
        print("\n".join(bars))


if __name__ == "__main__":
    main()
