"""Wall time and peak memory of reading an MMAction2 1.x ``--dump results.pkl`` at the paper's scale.

    python benchmarks/dump_read.py [--sizes 20000 100000] [--classes 400]

Writes a dump as MMAction2 1.x does (protocol 2, one dict per video holding
``pred_score`` softmax (C,) and ``gt_label`` (1,) float32/int64 tensors) and
its test list, then reads them with ``read_scores("results.pkl:list.txt")``
in a child process: every tensor goes through the restricted unpickler (one
``torch.load(weights_only=True)`` per storage) and the softmax rows are read
back as log-probabilities. Prints the file size, wall time and the child's
peak RSS.
"""

from __future__ import annotations

import argparse
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

READ = """
import sys
from condsel.selection.data.importers import read_scores
scores = read_scores(sys.argv[1])
assert scores.logits.shape == (int(sys.argv[2]), int(sys.argv[3])), scores.logits.shape
"""


def write_dump(directory: Path, n: int, classes: int, seed: int = 0) -> str:
    """Write ``results.pkl`` and ``test.txt`` in chunks of rows; returns the ``SCORES:LIST`` source."""
    import torch

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    items = []
    for start in range(0, n, 10_000):
        z = torch.from_numpy(rng.normal(size=(min(10_000, n - start), classes)).astype(np.float32))
        p = torch.softmax(z, dim=1)
        items += [{"pred_score": row.clone(), "pred_label": row.argmax().reshape(1),
                   "gt_label": torch.tensor([int(labels[start + i])]), "num_classes": classes}
                  for i, row in enumerate(p)]
    (directory / "results.pkl").write_bytes(pickle.dumps(items, protocol=2))
    (directory / "test.txt").write_text("".join(f"videos/v{i:07d}.mp4 {y}\n" for i, y in enumerate(labels)))
    return f"{directory / 'results.pkl'}:{directory / 'test.txt'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--classes", type=int, default=400)
    args = parser.parse_args()
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            source = write_dump(Path(tmp), n, args.classes)
            size = (Path(tmp) / "results.pkl").stat().st_size
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", READ, source, str(n), str(args.classes)], check=True)
            wall = time.perf_counter() - start
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB; the largest child so far
            print(f"{n} videos x {args.classes} classes: dump {size / 2**20:.0f} MiB, read in {wall:.1f} s, "
                  f"peak RSS {peak:.2f} GiB", flush=True)


if __name__ == "__main__":
    main()
