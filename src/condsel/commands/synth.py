"""``condsel synth``: write the synthetic video benchmark (mp4 files and manifests)."""

from __future__ import annotations

import argparse

from condsel._argtypes import nonnegative_int, positive_int

DESCRIPTION = """\
Generate the synthetic video benchmark: N H.264 clips (16 frames, 64x48, 8 fps)
of 12 classes, six recognisable from appearance alone (a coloured shape) and
six that differ only in motion (left/right, grow/shrink, and the order of a
one-frame bright and dark flicker: each is its partner played backwards). Difficulty (noise,
shake, clutter, occlusion, contrast, object size) varies per video.

Writes into DIR:
  videos/vid_NNNNN.mp4
  manifest.csv             path,label for every video (path relative to DIR, label = class name)
  train.csv val.csv test.csv   a stratified 50/25/25 split, same columns
  classes.txt              class names in class-index order
The same --seed gives the same videos, byte for byte. See docs/synthetic.md.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth",
        help="generate the synthetic video benchmark (mp4 files + manifest.csv)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created)")
    p.add_argument("--videos", required=True, type=positive_int, metavar="N", help="number of videos (use at least 60 so that every class reaches every split)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from collections import Counter

    from condsel.synthetic import CLASS_NAMES, generate

    data = generate(args.out, args.videos, seed=args.seed, progress=not args.no_progress)
    sizes = Counter(data.splits.tolist())
    print(
        f"wrote {len(data.paths)} videos of {len(CLASS_NAMES)} classes to {data.root} "
        f"(train {sizes['train']}, val {sizes['val']}, test {sizes['test']}); manifest: {data.root / 'manifest.csv'}"
    )
    return 0
