"""Cut the SeqVLAD and IDT UCF101 fixtures in tests/data/ucf101_more_subset/ from ../shared/data.

Run from the repository root after tools/make_test_fixtures.py (it picks the
same 202 split-1 videos as tests/data/ucf101_scores_subset):
    python tools/make_ucf101_more_fixture.py
Each file keeps its source's layout: SeqVLAD's nameless score rows, in the
file's own order (the test list sorted by path, not its line order), with the
matching lines of the list files; IDT's ``.mat`` keys and MATLAB cells.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.io import loadmat, savemat

from condsel._io import load_npz
from condsel.selection.data.importers import read_scores, sample_key

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "ucf101_more"
OUT = ROOT / "tests" / "data" / "ucf101_more_subset"


def seqvlad(stream: str, keep: set[str]) -> None:
    lines = (SHARED / "seqvlad" / f"{stream}_test_split1.txt").read_text().splitlines()
    names = [line.split()[0] for line in lines]
    data = load_npz(SHARED / "seqvlad" / f"ucf101_{stream}_split1.npz", encoding="latin1")
    file_order = sorted(range(len(names)), key=lambda i: names[i])  # the rows' order in the published file
    rows = [r for r, i in enumerate(file_order) if sample_key(names[i]) in keep]
    (OUT / "seqvlad" / f"{stream}_test_split1.txt").write_text(
        "".join(line + "\n" for line, name in zip(lines, names) if sample_key(name) in keep))
    np.savez_compressed(OUT / "seqvlad" / f"ucf101_{stream}_split1.npz", scores=data["scores"][rows],
                        labels=data["labels"][rows])


def idt(keep: set[str]) -> None:
    mat = loadmat(SHARED / "idt" / "ucf_idt_split1.mat")
    rows = [i for i, cell in enumerate(mat["vn_idt"].reshape(-1)) if str(cell.reshape(-1)[0]) in keep]
    savemat(OUT / "idt" / "ucf_idt_split1.mat", {k: mat[k][rows] for k in ("scores_idt", "vn_idt", "gt_idt")})


def main() -> None:
    subset = read_scores(ROOT / "tests" / "data" / "ucf101_scores_subset" /
                         "ucf101_coviar__ucf101_mv__split1__mv_score_model_best.npz")
    keep = {sample_key(n) for n in subset.names}
    for folder in ("seqvlad", "idt"):
        (OUT / folder).mkdir(parents=True, exist_ok=True)
    for stream in ("rgb", "flow"):
        seqvlad(stream, keep)
    (OUT / "seqvlad" / "classInd.txt").write_bytes((SHARED / "seqvlad" / "classInd.txt").read_bytes())
    idt(keep)


if __name__ == "__main__":
    main()
