"""``--device`` and ``--precision``: the same two flags, spelt and checked the same way, on every command that runs a pool.

``predict``, ``serve``, ``extract`` and ``profile`` add them here; the values
are checked by :class:`condsel.pool.device.Placement` when the command runs (a
GPU that is not there, fp16 on a CPU: one line naming the flag, exit 2).
"""

from __future__ import annotations

import argparse

PRECISION_CHOICES = ("fp32", "bf16", "fp16")  # condsel.pool.device.PRECISIONS, without importing torch to build --help


def add_placement_flags(parser: argparse.ArgumentParser, runs: str, device_default: str | None = "cpu",
                        device_help: str = "default: cpu") -> None:
    """Add ``--device`` and ``--precision`` to ``parser``; ``runs`` says what they apply to (for --help)."""
    parser.add_argument("--device", default=device_default, metavar="DEVICE",
                        help=f"where {runs} run: cpu, cuda (the current GPU) or cuda:N ({device_help}); "
                             "decoding stays on CPU workers")
    parser.add_argument("--precision", default="fp32", choices=PRECISION_CHOICES,
                        help=f"autocast precision of {runs} (default: fp32; fp16 needs CUDA); scores stay float32")


def placement_from(args: argparse.Namespace, device: str | None = None):
    """The checked :class:`~condsel.pool.device.Placement` of the parsed flags (``device`` overrides ``--device``)."""
    from condsel.pool.device import Placement

    return Placement.parse(device or args.device, args.precision)
