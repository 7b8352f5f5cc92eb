"""The ``condsel`` command line: a thin dispatcher over ``condsel.commands``.

Each subcommand lives in its own module under ``condsel.commands`` and exposes
``register(subparsers)``, which adds its parser and sets ``func``; ``func(args)``
returns the process exit code. Command modules keep their heavy imports inside
``func`` so that ``condsel --help`` and ``condsel zoo`` start quickly.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# subcommand name -> module under condsel.commands
COMMANDS: dict[str, str] = {
    "detection-map": "detection_map",
    "thumos-gt": "thumos_gt",
    "localize": "localize",
    "table": "table",
    "zoo": "zoo",
    "extract": "extract",
    "inspect": "inspect",
    "demo": "demo",
    "synth": "synth",
    "predict": "predict",
    "serve": "serve",
    "analyze": "analyze",
    "report": "report",
}

# commands whose --out is a run directory: the exact command and versions are recorded there
RECORDS_PROVENANCE = {"demo", "table", "analyze", "localize", "synth"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="condsel",
        description="Conditional model selection for video understanding. "
        "Costs are GFLOPs = 1e9 multiply-adds (the X3D/fvcore convention).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in dict.fromkeys(COMMANDS.values()):
        importlib.import_module(f"condsel.commands.{module}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    out = getattr(args, "out", None)
    if out is not None and args.command in RECORDS_PROVENANCE:
        from condsel.report.provenance import write_provenance

        write_provenance(out, argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as e:  # bad input: say what and where, without a traceback
        print(f"condsel {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
