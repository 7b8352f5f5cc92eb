"""Wall time of `condsel table` with every policy: out-of-fold fronts, static baselines and the nested recommended front.

    python benchmarks/policies_speed.py [--pool 7] [--table POOL.npz] [--folds 5]

By default the 7-network UCF101 split-1 pool (the five DMC-Net/CoViAR models
and SeqVLAD RGB and flow, read from ../shared/data as `ucf101_policies.py`
does, with issue 11's costs); ``--pool 5`` the five alone; ``--table`` a saved
prediction table (table.npz of an earlier run). Torch runs on one thread, as the
command does. Prints seconds in total and per policy (cross-fitting is
(folds + folds*(folds-1)/2) fits per policy), and the process's CPU seconds,
which is what the wall time would be on two otherwise idle cores. Target: <= 180 s for the
7-network pool, 5 folds, on 2 cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

from ucf101_policies import pool_sources  # this folder's sibling script: one way to read the UCF101 pools

from condsel.cli import main as condsel

ROOT = Path(__file__).resolve().parents[1]


class _PolicyTimes(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("cross-fitted"):
            self.lines.append(record.getMessage())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, help="a saved table.npz (default: UCF101 split 1, --pool models)")
    parser.add_argument("--pool", type=int, choices=(5, 7), default=7)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--costs", type=Path, default=ROOT / "benchmarks" / "ucf101_pool7_costs.toml")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    if args.table:
        source = ["--table", str(args.table)]
    else:
        source = pool_sources(args.data, args.pool, 1) + ["--costs", str(args.costs)]
    times = _PolicyTimes()
    logging.getLogger("condsel.selection.evaluation.comparison").addHandler(times)
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu = time.perf_counter(), time.process_time()
        code = condsel(["table", *source, "--policies", "all", "--folds", str(args.folds), "--seed", "0", "--out", str(Path(tmp) / "run")])
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    if code != 0:
        raise SystemExit(f"condsel table failed (exit {code})")
    print()
    for line in times.lines:
        print(line)
    print(f"all policies, {args.folds} folds, incl. the paper's selector curve and bootstrap: {seconds:.1f} s wall, {cpu:.1f} s CPU")
    print("load average at the end (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
