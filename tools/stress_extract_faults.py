"""Run the crashing-decoder fault test many times while another process keeps a core busy.

The test makes the decoder SIGSEGV on one video and checks that exactly that
video, and no innocent one, is recorded as failed. Under load PyTorch reports
a dead worker wherever the main process happens to be, so a single pass
proves little; this repeats it (20 times by default) with ``yes > /dev/null``
beside it, as on a loaded 2-core machine, and prints how many runs passed.
Each run is a fresh pytest process (fresh fixture videos and store).

    python tools/stress_extract_faults.py [--runs 20] [--test NODE_ID]

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
    parser.add_argument("--test", default=TEST, help="pytest node id to repeat (default: %(default)s)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(f"stopped by SIGTERM after {passed} passes"))  # still stops `yes`
    passed, started = 0, time.perf_counter()
    busy = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL)  # keeps one core busy throughout
    try:
        for run in range(1, args.runs + 1):
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", args.test],
                cwd=REPO, env=env, capture_output=True, text=True,
            )
            ok = result.returncode == 0
            passed += ok
            last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr.strip()[-200:]
            print(f"run {run:2d}/{args.runs}: {'PASS' if ok else 'FAIL'} ({last})", flush=True)
            if not ok:
                print(result.stdout[-3000:], flush=True)
    finally:
        busy.kill()
        busy.wait()
    load = os.getloadavg()[0]
    print(f"{passed}/{args.runs} passed with the other core busy, {time.perf_counter() - started:.0f} s, "
          f"load average {load:.1f} (1 min) at the end")
    return 0 if passed == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
