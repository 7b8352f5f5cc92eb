"""Build the compact UCF101 split-1 table shipped inside the package.

Run from the repository root with ../shared/data beside it:
    python tools/bundle_ucf101.py
It reads the five published DMC-Net score files of split 1, joins them by
video name, stores the scores as float16 and writes
src/condsel/data/ucf101_split1.npz (pickle-free).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from condsel.datasets.ucf101 import UCF101_MODELS, ucf101_join, ucf101_score_files
from condsel.selection.data.importers import read_scores

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    files = ucf101_score_files(ROOT.parent / "shared" / "data" / "ucf101_scores", split=1)
    table = ucf101_join({name: read_scores(path) for name, path in files.items()})
    classes = {}
    for name, label in zip(table.names, table.labels):
        classes.setdefault(int(label), name.split("/")[0])
    arrays = {
        "names": table.names,
        "labels": table.labels.astype(np.int16),
        "class_names": np.asarray([classes[i] for i in range(table.num_classes)]),
        "groups": table.groups,
        **{f"logits/{m}": table.logits[m].astype(np.float16) for m in UCF101_MODELS},
    }
    out = ROOT / "src" / "condsel" / "data" / "ucf101_split1.npz"
    np.savez_compressed(out, **arrays)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
