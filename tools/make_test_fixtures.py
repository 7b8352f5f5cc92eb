"""Cut the small real fixtures in tests/data/ from the published files in ../shared/data.

Run from the repository root with ../shared/data beside it:
    python tools/make_test_fixtures.py
Every fixture is a subset of a published file, in that file's own layout, so
the loaders under test read it exactly as they read the original; sources and
licences are listed in tests/data/ATTRIBUTION.md. Videos are cut by copying
packets (no re-encoding), starting at a keyframe.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np

from condsel._io import load_npy, load_npz
from condsel.datasets.thumos import WTALC_FILES, activitynet_document, load_wtalc
from condsel.datasets.ucf101 import ucf101_score_files

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "tests" / "data"

# W-TALC subset: the two test videos the BaSNet json leaves out, test videos with
# ambiguous segments, and a few short validation videos.
THUMOS_VIDEOS = (
    "video_validation_0000051", "video_validation_0000052", "video_validation_0000053", "video_validation_0000054",
    "video_test_0000270", "video_test_0001496", "video_test_0000004", "video_test_0000007",
    "video_test_0000026", "video_test_0001508",
)
# MultiThumos also lists this test video, which has no action of the 20 THUMOS classes.
MULTITHUMOS_EXTRA = ("video_test_0001292",)
UCF101_PER_CLASS = 2


def cut_video(src: Path, dst: Path, first: int, count: int) -> None:
    """Copy ``count`` packets (in decode order) from the keyframe packet ``first`` on, timestamps shifted to 0."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=inp.format.name.split(",")[0]) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        packets = [p for p in inp.demux(inp.streams.video[0]) if p.size]
        kept = packets[first : first + count]
        if not kept[0].is_keyframe:
            raise ValueError(f"{src}: packet {first} is not a keyframe")
        offset = kept[0].dts
        for packet in kept:
            packet.stream = stream
            packet.dts -= offset
            packet.pts -= offset
            out.mux(packet)


def thumos_subset(names: tuple[str, ...]) -> None:
    folder = SHARED / "thumos14" / "wtalc_reduced"
    dst = OUT / "thumos14" / "wtalc_subset"
    dst.mkdir(parents=True, exist_ok=True)
    videoname = [v.decode() for v in load_npy(folder / "videoname.npy", encoding="bytes")]
    rows = [videoname.index(n) for n in names]
    for key in WTALC_FILES:
        array = load_npy(folder / f"{key}.npy", encoding="bytes")
        np.save(dst / f"{key}.npy", array if key == "classlist" else array[rows], allow_pickle=True)
    ambiguous = (folder / "Ambiguous_test.txt").read_text().splitlines()
    (dst / "Ambiguous_test.txt").write_text("".join(f"{line}\n" for line in ambiguous if line.split()[0] in names + MULTITHUMOS_EXTRA))
    anet = json.loads((SHARED / "thumos14" / "gt_activitynet_format.json").read_text())
    anet["database"] = {k: v for k, v in anet["database"].items() if k in names}
    (OUT / "thumos14" / "gt_activitynet_subset.json").write_text(json.dumps(anet))
    multi = json.loads((SHARED / "multithumos" / "multithumos.json").read_text())
    subset = {k: v for k, v in multi.items() if k in names + MULTITHUMOS_EXTRA}
    (OUT / "multithumos").mkdir(exist_ok=True)
    (OUT / "multithumos" / "multithumos_subset.json").write_text(json.dumps(subset))
    names_file = "class_names_alphabetical.txt"
    (OUT / "multithumos" / names_file).write_bytes((SHARED / "multithumos" / names_file).read_bytes())


def thumos_short_videos(train: int = 100, test: int = 30, max_seconds: float = 150.0) -> None:
    """Ground truth of the first short videos of each subset, in the ActivityNet layout."""
    full = load_wtalc(SHARED / "thumos14" / "wtalc_reduced")
    short = sorted(n for n, v in full.videos.items() if v.duration < max_seconds)
    keep = [n for n in short if "validation" in n][:train] + [n for n in short if "test" in n][:test]
    gt = type(full)(full.classes, {n: full.videos[n] for n in keep}, "subset")
    (OUT / "thumos14" / "short_videos_gt.json").write_text(json.dumps(activitynet_document(gt)))


def ucf101_subset(per_class: int) -> None:
    """The first ``per_class`` test videos of each class in split 1, each from a different group."""
    files = ucf101_score_files(SHARED / "ucf101_scores", split=1)
    reference = load_npz(files["mv"])
    chosen: dict[int, list[int]] = {}
    groups: dict[int, set[str]] = {}
    for i, (name, label) in enumerate(zip(reference["names"], reference["labels"])):
        group = name.split("_g")[1][:2]
        if len(chosen.setdefault(label, [])) < per_class and group not in groups.setdefault(label, set()):
            chosen[label].append(i)
            groups[label].add(group)
    names = reference["names"][sorted(i for rows in chosen.values() for i in rows)]
    dst = OUT / "ucf101_scores_subset"
    dst.mkdir(parents=True, exist_ok=True)
    for path in files.values():
        data = load_npz(path)
        rows = np.flatnonzero(np.isin(data["names"], names))
        np.savez_compressed(dst / path.name, scores=data["scores"][rows], labels=data["labels"][rows], names=data["names"][rows])


def main() -> None:
    (OUT / "videos").mkdir(parents=True, exist_ok=True)
    # frames 187..279 of the Kinetics clip (3.3 s): keyframes at 0, 43 and 81, the last one past
    # the decoder's 2 s seek threshold
    cut_video(SHARED / "videos" / "kinetics_arm_wrestling.mp4", OUT / "videos" / "arm_wrestling_cut.mp4", 187, 93)
    # the AVI (MPEG-4 with packed B-frames, one keyframe): its first 52 frames (2.1 s), ending
    # after a B-frame's placeholder packet so that every frame decodes as in the whole file
    cut_video(SHARED / "videos" / "unlabelled_test.avi", OUT / "videos" / "unlabelled_test_cut.avi", 0, 52)
    (OUT / "labelmaps").mkdir(exist_ok=True)
    for name in ("kinetics400.txt", "hvu.json"):
        (OUT / "labelmaps" / name).write_bytes((SHARED / "labelmaps" / name).read_bytes())
    thumos_subset(THUMOS_VIDEOS)
    thumos_short_videos()
    ucf101_subset(UCF101_PER_CLASS)
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"tests/data: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
