"""``condsel report``: one self-contained HTML page of a run directory."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Render RUNDIR (the output of `condsel demo`, `condsel table`, `condsel
analyze`, `condsel localize`, or a directory holding several of them) as one
HTML file: the summary tables (single models, the selector at its operating
points against random selection, the oracle and the single-model hull, with
bootstrap CIs), every PNG plot, the commands and versions from
RUNDIR/provenance.json, and a note on what is real and what is synthetic.
Images are embedded and the page loads nothing from the network.
"""


def register(sub) -> None:
    p = sub.add_parser("report", help="one self-contained HTML report of a run directory", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rundir", metavar="RUNDIR", help="directory to report on (searched recursively)")
    p.add_argument("--out", metavar="HTML", help="output file (default: RUNDIR/report.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from condsel.report.html import write_report

    path = write_report(args.rundir, args.out)
    print(f"wrote {path}")
    return 0
