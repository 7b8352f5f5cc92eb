"""Run the crashing-decoder fault test many times while other processes keep the cores busy.

The test makes the decoder SIGSEGV on one video and checks that exactly that
video, and no innocent one, is recorded as failed. A single pass proves
little about timing, so this repeats it (20 times by default) with
``--load N`` busy processes (``yes > /dev/null``) beside it, as on a loaded
2-core machine, and prints how many runs passed. Each run is a fresh pytest
process (fresh fixture videos and store).

    python tools/stress_extract_faults.py [--runs 20] [--load 1] [--test NODE_ID]

Exit status 0 only when every run passed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST = "tests/test_extract_faults.py::test_a_decoder_that_kills_its_worker_costs_one_video"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--load", type=int, default=1, help="busy processes beside the test (default: %(default)s)")
    parser.add_argument("--test", default=TEST, help="pytest node id to repeat (default: %(default)s)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    passed, started = 0, time.perf_counter()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(f"stopped by SIGTERM after {passed} passes"))  # still stops the load
    busy = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(args.load)]
    try:
        for run in range(1, args.runs + 1):
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:faulthandler", args.test],
                cwd=REPO, env=env, capture_output=True, text=True,
            )
            ok = result.returncode == 0
            passed += ok
            last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr.strip()[-200:]
            print(f"run {run:2d}/{args.runs}: {'PASS' if ok else 'FAIL'} ({last})", flush=True)
            if not ok:
                print(result.stdout[-3000:], flush=True)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    load = os.getloadavg()[0]
    print(f"{passed}/{args.runs} passed with {args.load} busy process(es) beside the test, "
          f"{time.perf_counter() - started:.0f} s, load average {load:.1f} (1 min) at the end")
    return 0 if passed == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
