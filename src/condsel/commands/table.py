"""``condsel table``: cross-validated selection curves from per-model score files."""

from __future__ import annotations

import argparse
import logging

from condsel._argtypes import int_at_least, nonnegative_float, nonnegative_int, positive_float, positive_int
from condsel._parallel import every_core

log = logging.getLogger(__name__)

DESCRIPTION = """\
Train the selector with k-fold cross-validation on per-video scores of a pool
of models and write DIR/summary.json, DIR/curve.png and DIR/table.npz.

Every curve point is out-of-fold. GFLOPs are per video, counted as
multiply-adds (the X3D/fvcore convention); selector and oracle points include
the backbone's cost, the selector's points also the selector's own.

Besides the paper's selector (curves.selector), every policy in --policies is
cross-fitted on the same folds: selector, cascade (fused outputs, per-stage
thresholds; mean and stacked fusion), ensemble_selector and
static (a static choice, or a per-video mix of two, as a policy the
recommended front can pick) and routing (after each member, the next one is
chosen from what ran; see docs/policies.md).
summary.json adds their out-of-fold fronts ("policies"), every static choice
of a single model or fused subset of <= 3 ("static", with "static_hull" and
"fusion_oracle"), and the recommended front ("recommended"): per budget, the
policy and setting chosen on the training folds only, reported held out.

Score files (one per model, joined by video name, classes mapped by name): the
DMC-Net/CoViAR published layout, a plain npz with names/labels/logits, a CSV
with name,label,<class scores>, an IDT .mat (scores_idt/vn_idt/gt_idt), or
scores in list order as NAME=SCORES:LIST (mmaction2 results.pkl, SeqVLAD/TSN
npz, npy; LIST is the test list whose line i names row i). Costs: --costs
FILE.toml with a [gflops] table of name = GFLOPs per video; for the UCF101
model keys (mv, residual, flow, gen_flow, iframe, seqvlad_rgb, seqvlad_flow)
they default to counts derived from the architectures; idt needs --costs.
"""


def _name_path(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def register(sub) -> None:
    p = sub.add_parser("table", help="selection curves from per-model score files (k-fold CV)", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--scores", type=_name_path, action="append", metavar="NAME=PATH", help="one model's score file; repeat per model")
    source.add_argument("--bundled", choices=["ucf101-split1"], help="use the UCF101 split-1 scores shipped with condsel")
    source.add_argument("--table", metavar="NPZ", help="a table.npz written by an earlier run")
    source.add_argument("--store", metavar="STORE", help="a store written by `condsel extract` (costs come with it)")
    p.add_argument("--backbone", help="the model that always runs and feeds the selector (default: chosen on the training folds)")
    p.add_argument("--policies", nargs="+", default=["all"], metavar="all|LIST",
                   help="policies to compare, comma- or space-separated: selector, cascade, "
                        "ensemble_selector, static, routing (default: all)")
    p.add_argument("--models", nargs="+", metavar="NAME", help="use only these models (default: all)")
    p.add_argument("--costs", metavar="FILE.toml",
                   help="[gflops] table, name = GFLOPs per video, overriding defaults; or [ms] for every model (condsel profile)")
    p.add_argument("--alpha", type=nonnegative_float, default=0.5, help="cost weight in the affinity labels, Eq. 2 (default: 0.5)")
    p.add_argument("--temperature", type=positive_float, help="use soft affinity labels softmax(-(L + alpha F)/T) instead of one-hot")
    p.add_argument("--selector-input", choices=["sorted", "probs", "probs+sorted"], default="sorted",
                   help="what the selector reads: the backbone's top-10 sorted probabilities (default), its full "
                        "probability vector (the paper's choice; better with Kinetics-scale data), or both")
    p.add_argument("--folds", type=int_at_least(2), default=5, help="cross-validation folds (default: 5)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed for folds, selector training and baselines (default: 0)")
    p.add_argument("--budget", type=positive_float, action="append", metavar="GFLOPS",
                   help="calibrate a threshold for this mean GFLOPs/video on the training folds, and add it to the "
                        "recommended front's budgets; repeatable")
    p.add_argument("--bootstrap", type=nonnegative_int, default=200, help="bootstrap replicates for the 95%% CIs (default: 200; 0: no CIs)")
    p.add_argument("--workers", type=positive_int, default=every_core(),
                   help="processes fitting policies in parallel (default: every core); the output is the same whatever the count")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from condsel._progress import progress_bar

    from condsel._io import write_json
    from condsel.models.costs import FLOP_CONVENTION
    from condsel.report.plots import plot_curves
    from condsel.selection.evaluation.evaluate import SelectionConfig, check_folds
    from condsel.selection.evaluation.comparison import SELECTOR_FAMILY, check_pool, evaluate_policies, parse_policies
    from condsel.selection.method.policies import POLICIES
    from condsel.sources import resolve_table, source_provenance
    from condsel.selection.evaluation.document import Provenance, build_document
    from condsel.selection.evaluation.text_summary import format_summary

    source = _source(args)
    table, derivation, unit = resolve_table(source, args.models, args.costs)
    check_folds(table, args.folds, "--folds")
    check_pool(table, args.backbone)  # every check on the input before the first line of output
    provenance = Provenance.from_json(source_provenance(source, table))
    names = parse_policies(",".join(args.policies))
    config = SelectionConfig(folds=args.folds, seed=args.seed, bootstrap=args.bootstrap, budgets=args.budget or [])
    selector_params = dict(alpha=args.alpha, temperature=args.temperature, selector_input=args.selector_input, seed=args.seed)
    policies = [POLICIES[n](**selector_params) if n in SELECTOR_FAMILY else n for n in names]
    print(FLOP_CONVENTION)
    for line in derivation:
        print("  " + line)
    if args.bootstrap == 0:
        print("--bootstrap 0: no confidence intervals (summary.ci95 holds only \"replicates\": 0, recommended points no ci95)")
    if unit == "ms":
        print("  costs are profiled ms per video: every cost below is ms, and summary.json spells its cost keys in ms (ms, best_ms, target_ms, ...; cost_unit)")
    with progress_bar(total=0, desc="policy fits", unit="fit") as bar:
        sections = evaluate_policies(table, args.backbone, policies, config, progress=bar, selector=POLICIES["selector"](**selector_params),
                                     workers=args.workers)
    doc = build_document(sections, provenance, derivation, unit)
    if doc.backbone_chosen:
        print(f"backbone chosen on the training folds: {doc.backbone}")
    for member, why in doc.pruned.items():
        print(f"pruned {member} (on training folds): {why}")
    out = Path(args.out)  # cli.main swaps it in only if the run succeeds
    write_json(out / "summary.json", doc.to_json())
    table.save(out / "table.npz")
    plot_curves(doc, out / "curve.png", title=f"{len(table.logits)} models, {doc.protocol['kind']}")
    print(format_summary(doc))
    print(f"wrote {out / 'summary.json'}, {out / 'curve.png'}, {out / 'table.npz'}")
    return 0


def _source(args: argparse.Namespace):
    """The one table source the mutually exclusive options name, as :func:`load_table` takes it."""
    if args.scores:
        names = [n for n, _ in args.scores]
        if len(set(names)) != len(names):
            raise ValueError(f"a model name is given twice in --scores: {names}")
        return dict(args.scores)
    return args.bundled or args.table or args.store
