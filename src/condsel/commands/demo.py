"""``condsel demo``: the whole system end to end on a fresh machine, in about ten minutes on 2 cores."""

from __future__ import annotations

import argparse

from condsel._argtypes import nonnegative_int

DESCRIPTION = """\
Run condsel end to end with nothing but the package:

  DIR/ucf101/        the real-score benchmark: the bundled UCF101 split-1 scores of
                     five published models, 5-fold CV selector, curves (real data)
  DIR/synthetic/     synthetic videos -> train a pool of three video CNNs on CPU ->
                     extract -> affinity -> selector -> curves, latency, and a reusable
                     run directory DIR/synthetic/run for `condsel predict` (synthetic data)
  DIR/localization/  a synthetic untrimmed benchmark: W-TALC heads on an appearance and
                     a motion stream, clip-level selection, detection mAP (synthetic data)
  DIR/analyses/      the paper's analyses (alpha sweep, per-class compute, backbones,
                     diagnostics, views, latency, beta sweep) as JSON + PNG
  DIR/report.html    one self-contained report of all of it

GFLOPs are multiply-adds (the X3D/fvcore convention).
"""


def register(sub) -> None:
    p = sub.add_parser("demo", help="run everything end to end (real UCF101 scores + synthetic videos)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed for every random choice (default: 0)")
    p.add_argument("--skip", nargs="+", choices=["ucf101", "synthetic", "localization", "analyses", "report"], default=[],
                   help="parts to leave out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import sys
    import time
    from pathlib import Path

    from condsel.models.costs import FLOP_CONVENTION
    from condsel.selection.evaluation.document import SummaryDocument
    from condsel.selection.evaluation.text_summary import format_summary

    log = logging.getLogger("condsel.workflows.demo")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"condsel demo -> {out}   ({FLOP_CONVENTION})")
    failed = []
    timings = {}
    parts = [("ucf101", _ucf101), ("synthetic", _synthetic), ("localization", _localization),
             ("analyses", _analyses), ("report", _report)]
    for name, part in parts:
        if name in args.skip:
            continue
        print(f"\n== {name} ==")
        start = time.perf_counter()
        try:
            summary = part(out, args.seed)
        except Exception as e:  # one part failing must not hide the others' results
            log.exception("demo part %s failed", name)
            failed.append(f"{name}: {e}")
            continue
        timings[name] = time.perf_counter() - start
        if isinstance(summary, SummaryDocument):
            print(format_summary(summary))
        print(f"[{name} done in {timings[name]:.0f} s]")
    print(f"\ntotal {sum(timings.values()):.0f} s: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    if failed:
        print("FAILED parts:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


def _ucf101(out, seed: int):
    from condsel.datasets.ucf101 import ucf101_costs
    from condsel.sources import load_table, source_provenance
    from condsel.selection.evaluation.comparison import evaluate_policies
    from condsel.selection.evaluation.document import Provenance, build_document
    from condsel.selection.evaluation.evaluate import SelectionConfig
    from condsel.selection.method.policies import SelectorPolicy
    from condsel.report.plots import plot_curves
    from condsel._io import write_json
    from condsel._parallel import every_core

    costs, derivation = ucf101_costs()
    print("\n".join(derivation))
    table = load_table("ucf101-split1").with_costs(costs)
    provenance = Provenance.from_json(source_provenance("ucf101-split1", table))
    # every policy, as condsel table runs them; the text summary leads with the recommended front
    sections = evaluate_policies(table, "mv", "all", SelectionConfig(seed=seed), selector=SelectorPolicy(seed=seed),
                                 workers=every_core())
    doc = build_document(sections, provenance, derivation)
    target = out / "ucf101"
    write_json(target / "summary.json", doc.to_json())
    table.save(target / "table.npz")
    plot_curves(doc, target / "curve.png", title="UCF101 split 1 (real scores), 5-fold CV")
    return doc


def _synthetic(out, seed: int):
    from condsel.workflows.demo import run_synthetic_demo

    return run_synthetic_demo(out / "synthetic", seed=seed, progress=True)  # logs its latency block


def _localization(out, seed: int) -> dict:
    from condsel.localization.pipeline import run_synthetic_localization

    summary = run_synthetic_localization(out / "localization", seed=seed, progress=True)
    streams = summary.get("streams", {})
    for name, s in streams.items():
        print(f"  {name:<7} {s['gflops']:8.2f} GFLOPs/clip   mAP@0.1:0.7 {s['map']:.2f}%")
    return summary


def _analyses(out, seed: int) -> dict:
    from condsel.workflows.analyses import run_demo_analyses

    result = run_demo_analyses(out / "analyses", synthetic_dir=out / "synthetic", seed=seed, progress=True)
    if result["failures"]:
        raise RuntimeError(f"analyses failed: {result['failures']}")
    print(f"wrote {len(result['written'])} analyses to {out / 'analyses'}")
    return {}


def _report(out, seed: int) -> dict:
    from condsel.report.html import write_report

    write_report(out, out / "report.html")
    print(f"wrote {out / 'report.html'}")
    return {}
