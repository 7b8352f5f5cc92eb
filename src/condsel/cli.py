"""The ``condsel`` command line: a thin dispatcher over ``condsel.commands``.

Each subcommand lives in its own module under ``condsel.commands`` and exposes
``register(subparsers)``, which adds its parser and sets ``func``; ``func(args)``
returns the process exit code. Command modules keep their heavy imports inside
``func`` so that ``condsel --help`` and ``condsel zoo`` start quickly.

Errors: commands raise ``ValueError`` (or :class:`condsel.errors.CondselError`)
for bad input and never catch it; :func:`main` alone turns it, and ``OSError``,
into one ``condsel CMD: error: ...`` line and exit status 2. A usage error
(an unknown option, a value outside its flag's range, see
:mod:`condsel._argtypes`) is argparse's, in the same one-line form, and
:func:`main` returns 2 for it too. A command returns 1 itself when it ran but
some of its inputs failed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from condsel import __version__

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
    "fit": "fit",
    "predict": "predict",
    "serve": "serve",
    "profile": "profile",
    "analyze": "analyze",
    "report": "report",
}

# commands whose --out is a run directory: the exact command and versions are recorded there, and a run
# replaces the folder only when it succeeds (extract's store is resumable and is written in place)
RECORDS_PROVENANCE = {"demo", "table", "analyze", "localize", "synth", "fit"}

EXIT_CODES = """\
exit status:
  0  done
  1  ran, but some inputs failed (each named on stderr or in the output)
  2  bad usage or bad input: an unknown option, an impossible option value,
     or a file that is missing, unreadable or malformed (the message names it)
"""


class _Parser(argparse.ArgumentParser):
    """argparse with the documented error form: one line ``condsel CMD: error: ...`` (no usage block), exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="condsel",
        description="Conditional model selection for video understanding. "
        "Costs are GFLOPs = 1e9 multiply-adds (the X3D/fvcore convention).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"condsel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")  # none: the help (main)
    for module in dict.fromkeys(COMMANDS.values()):
        importlib.import_module(f"condsel.commands.{module}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # a usage error (argparse has said which) returns its status; --help, --version still exit
        if not e.code:
            raise
        return int(e.code)
    if args.command is None:
        parser.print_help()
        return 0
    from condsel._io import fix_mmap_threshold

    fix_mmap_threshold()  # freed whole-table arrays go back to the system (a long run's heap stays bounded)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    out = getattr(args, "out", None)
    if out is None or args.command not in RECORDS_PROVENANCE:
        return _run(args)
    from condsel._io import replacing_dir
    from condsel.report.provenance import write_provenance

    try:
        _check_inputs_outside(args, out)
        with replacing_dir(out):
            write_provenance(out, argv)
            code = _run(args)
            if code == 2:
                raise _RunFailed
    except _RunFailed:
        return 2
    except (ValueError, OSError) as e:
        return _report_error(args, e)
    return code


class _RunFailed(Exception):
    """The command exited 2 (its error is already printed): its output folder is put back as it was."""


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as e:  # bad input: say what and where, without a traceback
        return _report_error(args, e)


def _report_error(args: argparse.Namespace, error: Exception) -> int:
    # one line, whatever a file's names hold: control characters and line separators are escaped
    message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(error))
    print(f"condsel {args.command}: error: {message}", file=sys.stderr)
    return 2


def _check_inputs_outside(args: argparse.Namespace, out: str) -> None:
    """Refuse a run that reads a file inside the --out folder it is about to replace."""
    from pathlib import Path

    root = Path(out).resolve()
    for dest, value in vars(args).items():
        if dest == "out":
            continue
        for text in _strings(value):
            path = Path(text)
            if path.exists() and path.resolve().is_relative_to(root):
                raise ValueError(f"--{dest.replace('_', '-')} {text} lies inside --out {out}, which this run replaces; "
                                 "write to another folder")


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


if __name__ == "__main__":
    sys.exit(main())
