"""Wall time and peak memory of the public `condsel table` on generated tables at the paper's scale.

    python benchmarks/table_scale.py [--sizes 10000 20000 40000 100000] [--models 10] [--classes 400]
                                     [--multilabel] [--policies all] [--keep DIR]

Each table is written in the plain npz layout (``names``, ``labels``,
``logits`` per model) with a ``[gflops]`` costs file, then
``condsel table --scores ... --costs ... --out ...`` runs as a child process
with its defaults (all policies, 5 folds). Members have rising accuracy and
cost, and every video has a difficulty shared by all members, so selection
has something to find (a hard video needs a strong member). ``--multilabel``
writes 0/1 label matrices (HVU-like). Prints wall time, peak memory of the
child and its workers (polled every 0.5 s with psutil, see :func:`run_table`)
and, over two or more sizes, the exponent of wall time against N (least
squares on log-log). A size with a target (``TARGETS``) says whether it met it.

    python benchmarks/table_scale.py --sizes 240000   # Kinetics-400's training set: <= 15 min, <= 8 GB (issue 28)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil


# (videos, models, classes, multilabel) -> (wall seconds, GiB): the scale targets of issues 24 and 28.
# Memory is checked on the larger of summed PSS and the largest process's RSS.
TARGETS = {
    (20_000, 10, 400, False): (300.0, 2.0),
    (240_000, 10, 400, False): (900.0, 8.0),  # the size of Kinetics-400's training set
    (10_000, 5, 3142, True): (600.0, None),  # HVU-sized multi-label
}


def generate(directory: Path, n: int, models: int, classes: int, multilabel: bool, seed: int = 0) -> list[str]:
    """Write ``models`` plain-npz score files and ``costs.toml``; returns the ``--scores`` arguments."""
    rng = np.random.default_rng(seed)
    names = np.array([f"video_{i:07d}" for i in range(n)])
    difficulty = rng.random(n)  # shared by every member
    if multilabel:
        labels = (rng.random((n, classes)) < 3.0 / classes).astype(np.uint8)
        labels[np.arange(n), rng.integers(0, classes, n)] = 1
    else:
        labels = rng.integers(0, classes, n)
    strengths = np.linspace(1.5, 5.0, models)
    costs = np.geomspace(4.0, 300.0, models)
    scores, lines = [], ["[gflops]"]
    for m, (strength, cost) in enumerate(zip(strengths, costs)):
        # a member sees a video's class more clearly the stronger it is and the easier the video
        margin = (strength * (1.2 - difficulty)).astype(np.float32)[:, None]
        logits = rng.normal(size=(n, classes)).astype(np.float32)
        if multilabel:
            logits += margin * (2.0 * labels - 1.0) - 2.0
        else:
            logits[np.arange(n), labels] += margin[:, 0]
        path = directory / f"m{m}.npz"
        np.savez(path, names=names, labels=labels, logits=logits)
        scores += ["--scores", f"m{m}={path}"]
        lines.append(f"m{m} = {cost:.3f}")
    (directory / "costs.toml").write_text("\n".join(lines) + "\n")
    return scores


def run_table(scores: list[str], costs: Path, out: Path, policies: str) -> tuple[float, float, float, int]:
    """Wall seconds, peak memory (GiB) and exit code of one `condsel table` run.

    Memory is polled over the child and its forked workers: the peak of their
    summed PSS (proportional set size: a page shared by k processes counts
    1/k in each, so the sum is what the machine holds) and the peak RSS of
    the largest single process. Summed RSS would count every page the
    workers share with the parent once per worker.
    """
    cmd = [sys.executable, "-m", "condsel", "table", *scores, "--costs", str(costs), "--policies", policies, "--out", str(out)]
    start = time.perf_counter()
    log = out.with_suffix(".log")  # the child's progress bar and messages; its tail is printed on failure
    with log.open("w") as err:
        child = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    peak_pss = peak_rss = 0
    while child.poll() is None:
        try:
            procs = [p for p in (child, *child.children(recursive=True)) if p.is_running()]
            info = [p.memory_full_info() for p in procs]
            peak_pss = max(peak_pss, sum(i.pss for i in info))
            peak_rss = max(peak_rss, max(i.rss for i in info))
        except psutil.Error:
            pass
        time.sleep(0.5)
    if child.returncode != 0:
        print(log.read_text()[-3000:], file=sys.stderr)
    return time.perf_counter() - start, peak_pss / 2**30, peak_rss / 2**30, child.returncode


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000, 40_000, 100_000])
    p.add_argument("--models", type=int, default=10)
    p.add_argument("--classes", type=int, default=400)
    p.add_argument("--multilabel", action="store_true")
    p.add_argument("--policies", default="all")
    p.add_argument("--keep", type=Path, help="write tables and outputs here instead of a temporary folder")
    args = p.parse_args()
    print(f"load average at start: {psutil.getloadavg()[0]:.1f} (1 min), {psutil.cpu_count()} cores")
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for n in args.sizes:
            folder = root / f"n{n}"
            folder.mkdir(parents=True, exist_ok=True)
            scores = generate(folder, n, args.models, args.classes, args.multilabel)
            size = sum(f.stat().st_size for f in folder.glob("m*.npz")) / 2**20
            wall, pss, rss, code = run_table(scores, folder / "costs.toml", folder / "out", args.policies)
            walls.append(wall)
            kind = "multi-label" if args.multilabel else "single-label"
            print(f"{n} videos x {args.models} models x {args.classes} classes ({kind}, {size:.0f} MB of npz): "
                  f"wall {wall:.1f} s, peak memory {pss:.2f} GiB (summed PSS), largest process RSS {rss:.2f} GiB, "
                  f"exit {code}, load {psutil.getloadavg()[0]:.1f}", flush=True)
            target = TARGETS.get((n, args.models, args.classes, args.multilabel))
            if target is not None:
                seconds, gib = target
                met = wall <= seconds and (gib is None or max(pss, rss) <= gib)
                print(f"  target <= {seconds / 60:.0f} min" + (f", <= {gib:.0f} GB" if gib else "") + f": {'met' if met else 'NOT met'}", flush=True)
            if code != 0:
                return code
    if len(walls) >= 2:
        slope = np.polyfit(np.log(args.sizes), np.log(walls), 1)[0]
        print(f"wall time grows as N^{slope:.2f} over N = {args.sizes} (target <= 1.15)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
