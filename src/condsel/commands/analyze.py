"""``condsel analyze``: the paper's analyses, each writing OUT/<name>.json and OUT/<name>.png."""

from __future__ import annotations

import argparse

from condsel._argtypes import fraction, int_at_least, nonnegative_float, nonnegative_int, positive_int

DESCRIPTION = """\
The analyses behind the paper's figures. Each writes OUT/<name>.json (the
numbers) and OUT/<name>.png (the plot); `condsel report` renders them.

Table analyses (alpha-sweep, per-class, backbones, diagnostics) read the UCF101
split-1 scores shipped with condsel (real, published) unless --table gives a
table.npz from `condsel table`/`condsel extract`. Their selectors are scored
out-of-fold with k-fold cross-validation, as in `condsel table`. GFLOPs are per
video, counted as multiply-adds (X3D/fvcore convention), backbone and selector
included.
"""

SUBCOMMANDS = {
    "alpha-sweep": "curves for several cost weights alpha, and how the affinity labels shift between models (Fig. 3a)",
    "views": "test views per video (clips x crops) against accuracy and GFLOPs (Fig. 3b)",
    "per-class": "accuracy vs mean GFLOPs per class at one threshold; cheapest and costliest classes (Fig. 3c)",
    "backbones": "the same pool with the selector on different backbones (Fig. 4a)",
    "latency": "measured latency vs accuracy: pool resident, loaded per selection, batched (Fig. 4b)",
    "diagnostics": "selector reliability diagram, label-vs-chosen confusion, affinity label distribution",
    "localization": "clip selector: beta sweep, soft vs pure pseudo-labels, disparity histogram (Fig. 5)",
}


def _table_args(p: argparse.ArgumentParser, alpha: bool = True) -> None:
    p.add_argument("--table", metavar="NPZ", help="a table.npz (default: the bundled UCF101 split-1 scores)")
    p.add_argument("--costs", metavar="FILE.toml", help="[gflops] table, name = GFLOPs per video; overrides stored costs")
    p.add_argument("--backbone", help="model that always runs and feeds the selector (default: mv for the bundled "
                                      "UCF101 table, else the cheapest model)")
    if alpha:
        p.add_argument("--alpha", type=nonnegative_float, help="cost weight of the affinity labels, Eq. 2 (default: condsel table's)")
    p.add_argument("--folds", type=int_at_least(2), default=5, help="cross-validation folds (default: 5)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed for folds, selector training and random draws (default: 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")


def register(sub) -> None:
    p = sub.add_parser("analyze", help="the paper's analyses (alpha, views, per-class, backbones, latency, ...)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = p.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    parsers = {name: kinds.add_parser(name, help=text, description=text) for name, text in SUBCOMMANDS.items()}

    a = parsers["alpha-sweep"]
    _table_args(a, alpha=False)
    a.add_argument("--alphas", type=nonnegative_float, nargs="+", default=[0.0, 0.5, 1.0, 2.0, 4.0], metavar="A",
                   help="cost weights to compare (default: 0 0.5 1 2 4)")

    v = parsers["views"]
    source = v.add_mutually_exclusive_group(required=True)
    source.add_argument("--per-view", metavar="NPZ", help="per-view logits: names, labels, views/<model> (N, clips*crops, C) "
                                                           "clip-major, layout_json, gflops_per_view_json")
    source.add_argument("--run", metavar="RUNDIR", help="a run directory (condsel demo's synthetic/run) whose members' "
                                                        "per-view logits are recomputed on --manifest")
    v.add_argument("--manifest", metavar="CSV", help="path,label CSV of the videos for --run (e.g. synthetic/data/test.csv)")
    v.add_argument("--draws", type=positive_int, default=20, help="random draws of which clips/crops per point (default: 20)")

    c = parsers["per-class"]
    _table_args(c)
    c.add_argument("--threshold", type=fraction, help="selector threshold (default: the cheapest point of the "
                                                   "out-of-fold sweep that matches the best single model)")
    c.add_argument("--named", type=positive_int, default=5, help="how many cheapest/costliest classes to name (default: 5)")

    b = parsers["backbones"]
    _table_args(b)
    b.add_argument("--backbones", nargs="+", metavar="NAME",
                   help="backbones to compare (default: mv residual flow for UCF101, else every model)")

    lat = parsers["latency"]
    lat.add_argument("--summary", required=True, metavar="JSON",
                     help="a summary.json with a 'latency' block (condsel demo writes DIR/synthetic/summary.json)")

    d = parsers["diagnostics"]
    _table_args(d)
    d.add_argument("--threshold", type=fraction, help="threshold of the confusion matrix (default as for per-class)")
    d.add_argument("--bins", type=positive_int, default=10, help="reliability-diagram bins (default: 10)")

    loc = parsers["localization"]
    loc.add_argument("--betas", type=fraction, nargs="+", default=[0.1, 0.3, 0.5], metavar="B",
                     help="shares of each training video's clips labelled motion (default: 0.1 0.3 0.5)")
    loc.add_argument("--pseudo-label-betas", type=fraction, nargs="*", metavar="B",
                     help="betas at which to also train on the pure pseudo-labels (default: every beta)")
    loc.add_argument("--points", type=int_at_least(2), default=11, help="operating points per curve (default: 11)")
    loc.add_argument("--random-seeds", type=positive_int, default=3, help="random-selection repeats per point (default: 3)")
    loc.epilog = "Runs on the synthetic untrimmed benchmark (no real per-clip features ship with condsel)."

    for q in parsers.values():
        _common(q)
    for q in (a, c, b, d):
        q.epilog = "GFLOPs = multiply-adds per video, backbone and selector included."
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from condsel.workflows.analyses import write_analysis

    compute = {
        "alpha-sweep": _alpha_sweep, "views": _views, "per-class": _per_class, "backbones": _backbones,
        "latency": _latency, "diagnostics": _diagnostics, "localization": _localization,
    }[args.analysis]
    name = args.analysis.replace("-", "_")
    data = compute(args)
    json_path, png_path = write_analysis(Path(args.out), name, data)
    print(f"wrote {json_path} and {png_path}")
    failures = data.get("failures") or {}
    for video, why in list(failures.items())[:5]:
        print(f"skipped {video}: {why}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} input(s) skipped (listed under 'failures' in {json_path})", file=sys.stderr)
    return 1 if failures else 0


def _table(args):
    """The table with costs, its default backbone and a line saying what data it is."""
    from condsel.datasets.ucf101 import UCF101_BACKBONE, UCF101_DATA
    from condsel.sources import resolve_table

    from condsel.selection.evaluation.evaluate import check_folds

    table, _, _ = resolve_table(args.table or "ucf101-split1", costs=args.costs)
    check_folds(table, args.folds, "--folds")
    backbone = args.backbone or (UCF101_BACKBONE if not args.table else table.models[0])
    return table, backbone, (f"table {args.table}" if args.table else UCF101_DATA)


def _config(args):
    """The protocol of `condsel table`, without bootstrap CIs (the analyses do not report them)."""
    from condsel.selection.evaluation.evaluate import SelectionConfig

    return SelectionConfig(folds=args.folds, seed=args.seed, bootstrap=0)


def _selector(args, backbone: str, alpha: float | None = None):
    """The paper's selector of `condsel table` (its defaults, ``--alpha`` and ``--seed``) on ``backbone``."""
    from condsel.selection.method.policies import SelectorPolicy

    alpha = alpha if alpha is not None else getattr(args, "alpha", None)
    return SelectorPolicy(backbone=backbone, seed=args.seed, **({"alpha": alpha} if alpha is not None else {}))


def _runs_with_progress(runs, jobs: list[tuple[str, object]]) -> None:
    """Fill the memo of cross-validation runs with a progress bar; the analyses then read it."""
    from condsel._progress import progress_bar

    for selector, config in progress_bar(jobs, desc="cross-validation runs", unit="run"):
        runs(selector, config)


def _alpha_sweep(args) -> dict:
    from condsel.analysis.alpha import alpha_sweep
    from condsel.analysis.oof import OutOfFoldRuns

    table, backbone, data = _table(args)
    runs = OutOfFoldRuns(table)
    _runs_with_progress(runs, [(_selector(args, backbone, a), _config(args)) for a in args.alphas])
    out = alpha_sweep(runs, _selector(args, backbone), args.alphas, _config(args))
    for row in out["labels"]:
        shares = ", ".join(f"{m} {100 * s:.1f}%" for m, s in row["share"].items())
        print(f"alpha {row['alpha']:g}: labels {shares}; {row['mean_routed_gflops']:.2f} GFLOPs/video if routed to them")
    return {**out, "data": data}


def _operating(args, table, backbone):
    from condsel.analysis.oof import OutOfFoldRuns
    from condsel.analysis.operating import default_operating_point

    runs = OutOfFoldRuns(table)
    _runs_with_progress(runs, [(_selector(args, backbone), _config(args))])
    oof, summary = runs(_selector(args, backbone), _config(args))
    threshold = args.threshold if args.threshold is not None else default_operating_point(summary)["threshold"]
    return oof, threshold


def _per_class(args) -> dict:
    from condsel.analysis.per_class import per_class_compute

    table, backbone, data = _table(args)
    oof, threshold = _operating(args, table, backbone)
    out = per_class_compute(table, oof, threshold, args.named)
    print(f"threshold {threshold:.3f}: {out['overall']['gflops']:.2f} GFLOPs/video, top-1 {out['overall']['top1']:.2f}%")
    print(f"cheapest classes: {', '.join(out['cheapest'])}\ncostliest classes: {', '.join(out['costliest'])}")
    return {**out, "data": data}


def _backbones(args) -> dict:
    from condsel.analysis.backbones import backbone_comparison
    from condsel.analysis.oof import OutOfFoldRuns

    table, _, data = _table(args)
    names = args.backbones or (["mv", "residual", "flow"] if not args.table else table.models)
    runs = OutOfFoldRuns(table)
    _runs_with_progress(runs, [(_selector(args, b), _config(args)) for b in names])
    out = backbone_comparison(runs, _selector(args, names[0]), names, _config(args))
    for name, b in out["backbones"].items():
        match = b["headline"]["gflops_to_match_best"]
        print(f"{name}: reaches the best single model at {'not reached' if match is None else f'{match:.1f}'} GFLOPs/video")
    return {**out, "data": data}


def _diagnostics(args) -> dict:
    from condsel.analysis.diagnostics import selector_diagnostics

    table, backbone, data = _table(args)
    oof, threshold = _operating(args, table, backbone)
    out = selector_diagnostics(table, oof, threshold, args.bins)
    print(f"top model = affinity label for {100 * out['top_model_agreement']:.1f}% of videos; "
          f"ECE {out['reliability_vs_label']['ece']:.3f}")
    return {**out, "data": data}


def _views(args) -> dict:
    from condsel.analysis.views import (
        PerViewScores,
        per_view_scores_from_run,
        views_analysis,
    )

    if args.run:
        from condsel.extract.manifest import read_manifest
        from condsel.pool.run_dir import load_run

        if not args.manifest:
            raise ValueError("--run needs --manifest (the videos to recompute the views on)")
        run = load_run(args.run)
        manifest = read_manifest(args.manifest, len(run.class_names), run.class_names)
        scores, failures = per_view_scores_from_run(run, manifest.entries, progress=True)
        failures.update({bad.name: bad.error for bad in manifest.bad_rows})
        data = f"run {args.run} on {args.manifest}"
    else:
        scores, failures = PerViewScores.load(args.per_view), {}
        data = f"per-view scores {args.per_view}"
    out = views_analysis(scores, args.draws, args.seed)
    for name, m in out["models"].items():
        print(name + ": " + ", ".join(f"{p['clips']}x{p['crops']} {p['top1']:.1f}%" for p in m["points"]))
    return {**out, "data": data, "failures": failures}


def _latency(args) -> dict:
    from pathlib import Path

    from condsel.analysis.latency import latency_points
    from condsel.selection.evaluation.document import load_summary

    path = Path(args.summary)
    doc = load_summary(path)
    try:
        out = latency_points(doc)
    except (KeyError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from e
    for p in out["points"]:
        print(f"{p['label']}: {1000 * p['seconds_per_video']:.1f} ms/video, top-1 {p['top1']:.2f}%")
    synthetic = doc.provenance is not None and doc.provenance.data == "synthetic"
    note = "SYNTHETIC pool, timed on this machine" if synthetic else f"summary {path}"
    return {**out, "data": note}


def _localization(args) -> dict:
    from condsel.analysis.localization import beta_sweep_synthetic
    from condsel.localization.pipeline import SelectionSettings

    settings = SelectionSettings(standardize=True, points=args.points, random_seeds=args.random_seeds)
    out = beta_sweep_synthetic(args.betas, args.seed, settings, progress=True, pseudo_label_betas=args.pseudo_label_betas)
    for r in out["runs"]:
        print(f"beta {r['beta']:g}, {r['variant']}: selector above random on "
              f"{100 * r['selector_above_random_fraction']:.0f}% of the GFLOPs range")
    return out
