"""Wall time of `condsel table` with every policy: out-of-fold fronts, static baselines and the nested recommended front.

    python benchmarks/policies_speed.py [--table POOL.npz] [--folds 5]

``--table``: a saved prediction table (e.g. the 7-network UCF101 split-1 pool,
table.npz of an earlier run); without it, the five DMC-Net/CoViAR models of
split 1 from ../shared/data/ucf101_scores. Torch runs on one thread, as the
command does. Prints seconds in total and per policy (cross-fitting is
(folds + folds*(folds-1)/2) fits per policy), and the process's CPU seconds,
which is what the wall time would be on two otherwise idle cores. Target: <= 180 s for the
7-network pool, 5 folds, on 2 cores.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from condsel.cli import main as condsel
from condsel.datasets.ucf101 import ucf101_score_files

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
    parser.add_argument("--table", type=Path, help="a saved table.npz (default: UCF101 split 1, five models)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ucf101_scores")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    if args.table:
        source = ["--table", str(args.table)]
    else:
        source = [arg for name, path in ucf101_score_files(args.data, 1).items() for arg in ("--scores", f"{name}={path}")]
    times = _PolicyTimes()
    logging.getLogger("condsel.selection.fronts").addHandler(times)
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


if __name__ == "__main__":
    main()
