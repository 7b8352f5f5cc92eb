"""Decoding speed: what decoding only the needed frames, seeking and threads buy.

Usage: python benchmarks/decode_speed.py [--repeat 5]

Reports milliseconds per video (best of --repeat) on the bundled Kinetics clip
(340x256, 10 s) and on freshly generated synthetic clips (64x48, 16 frames):
every frame vs only the frames the default synthetic pool tests on (one
decode for the whole pool), with 1 decoder thread vs FFmpeg's choice.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from condsel.workflows.demo import SYNTHETIC_POOL
from condsel.synthetic import generate
from condsel.video.decode import decode_video
from condsel.video.sampling import frames_needed

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def best_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    pool = frames_needed([m.clip for m in SYNTHETIC_POOL.members])
    short = SYNTHETIC_POOL.decode_short_side
    kinetics = DATA / "videos" / "kinetics_arm_wrestling.mp4"
    rows = []
    for threads in (1, 0):
        rows.append({"video": "kinetics 340x256, 280 frames", "frames": "all, full size", "threads": threads,
                     "ms": best_ms(lambda n=threads: decode_video(kinetics, threads=n), args.repeat)})
        rows.append({"video": "kinetics 340x256, 280 frames", "frames": "pool's frames, short side 48", "threads": threads,
                     "ms": best_ms(lambda n=threads: decode_video(kinetics, pool, short_side=short, threads=n), args.repeat)})
    with tempfile.TemporaryDirectory() as tmp:
        paths = generate(tmp, 20, seed=0).paths
        for threads in (1, 0):
            ms = best_ms(lambda n=threads: [decode_video(p, pool, short_side=short, threads=n) for p in paths], args.repeat) / len(paths)
            rows.append({"video": "synthetic 64x48, 16 frames", "frames": "pool's frames", "threads": threads, "ms": ms})
    for r in rows:
        r["ms"] = round(r["ms"], 2)
        print(json.dumps(r))


if __name__ == "__main__":
    main()
