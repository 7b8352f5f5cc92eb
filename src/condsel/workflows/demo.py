"""The synthetic part of ``condsel demo``, as stages: generate, decode, train, extract, select, time, write.

Videos are generated, written as H.264 files and decoded back (each once, kept
in memory as uint8 frames); the pool is trained on the train split; every
member runs on the val and test splits; the selector is trained on val and
every curve point is measured on test. The run directory it writes is what
``condsel predict`` loads. Everything follows from ``seed``.

Each stage is a function of the previous stages' data; :func:`run_synthetic_demo`
chains them and times each. ``condsel.synthetic`` only makes the benchmark.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import nn
from condsel._progress import progress_bar

from condsel._io import write_json
from condsel.models import get_spec
from condsel.pool.config import PoolConfig, PoolMember
from condsel.pool.inference import pool_table
from condsel.pool.latency import measure_latency
from condsel.pool.run_dir import load_run, save_run
from condsel.pool.train import TrainConfig, train_member
from condsel.report.plots import plot_curves
from condsel.report.text import format_latency
from condsel.selection.evaluation.document import Provenance, SummaryDocument, build_document
from condsel.selection.data.table import PredictionTable
from condsel.selection.evaluation.evaluate import SelectionConfig, evaluate_holdout
from condsel.selection.method.metrics import topk_correct
from condsel.selection.method.policies import SelectorPolicy
from condsel.synthetic import CLASS_NAMES, SPLITS, SyntheticSet, generate
from condsel.video.decode import DecodedVideo, decode_video
from condsel.video.sampling import ClipSpec

log = logging.getLogger(__name__)

DEMO_VIDEOS = 1440  # 720 train / 360 val / 360 test
DEMO_EPOCHS = {"frame2d": 8, "conv3d_s": 4, "conv3d_l": 6}
LATENCY_VIDEOS = 90  # test videos timed per latency mode
LATENCY_SWEEP = (0.1, 0.25, 0.5)  # also timed: thresholds for these fractions of the largest model's GFLOPs
LATENCY_THREADS = 1


def _synthetic_member(arch: str, clips: int = 1, crops: int = 1) -> PoolMember:
    spec = get_spec(arch)
    clip = ClipSpec(spec.frames, spec.stride, spec.crop, clips=clips, crops=crops, target_fps=spec.fps)
    return PoolMember(arch, arch, clip, len(CLASS_NAMES))


# The zoo's synthetic nets at their default input; conv3d_l is tested on 3 clips
# x 3 crops, so its cost dominates decoding.
SYNTHETIC_POOL = PoolConfig(
    backbone="frame2d",
    members=(_synthetic_member("frame2d"), _synthetic_member("conv3d_s"), _synthetic_member("conv3d_l", clips=3, crops=3)),
)


def decode_all(paths: Sequence[Path], short_side: int, progress: bool) -> list[DecodedVideo]:
    """Every frame of every video, decoded once and held in memory for training and extraction."""
    return [decode_video(p, short_side=short_side) for p in progress_bar(paths, desc="decode", unit="video", disable=not progress)]


def split_indices(data: SyntheticSet) -> dict[str, np.ndarray]:
    """Video indices of each split (train, val, test)."""
    return {s: np.flatnonzero(data.splits == s) for s in SPLITS}


def train(member: PoolMember, data: SyntheticSet, videos: list[DecodedVideo], index: np.ndarray, seed: int,
          progress: bool) -> nn.Module:
    """One member trained from scratch on the videos at ``index`` (the train split)."""
    return train_member(member, [videos[j] for j in index], data.labels[index],
                        TrainConfig(epochs=DEMO_EPOCHS[member.name]), seed=seed, progress=progress)


def extract(data: SyntheticSet, videos: list[DecodedVideo], index: np.ndarray, models: dict[str, nn.Module],
            progress: bool) -> PredictionTable:
    """Every member's outputs on the videos at ``index``, named by their path under the benchmark's root."""
    names = [data.paths[j].relative_to(data.root).as_posix() for j in index]
    return pool_table(list(SYNTHETIC_POOL.members), models, [videos[j] for j in index], names, data.labels[index],
                      list(CLASS_NAMES), progress=progress)


def select(val: PredictionTable, test: PredictionTable, models: dict[str, nn.Module], run_dir: Path,
           seed: int, out_dir: Path) -> tuple[SummaryDocument, float]:
    """Train the selector on val, measure every curve point on test, and write the run directory.

    Returns the held-out summary and the run's threshold (the cheapest val
    point reaching the best single model's val top-1).
    """
    gflops = SYNTHETIC_POOL.gflops
    backbone = min(gflops, key=gflops.get)
    # the selector reads the backbone's class probabilities (the paper's input): here which
    # class, and so which pair of classes, the cheap model sees decides which model is needed
    sections, policy = evaluate_holdout(SelectorPolicy(backbone=backbone, selector_input="probs", seed=seed), val, test,
                                        SelectionConfig(seed=seed))
    provenance = Provenance("synthetic", [f"{out_dir / 'val_table.npz'} (selector training, calibration)",
                                          f"{out_dir / 'test_table.npz'} (reported)"])
    derivation = [f"{m.name}: {m.gflops_per_video:.4g} GFLOPs/video, counted from its graph ({m.views} views)"
                  for m in SYNTHETIC_POOL.members]
    summary = build_document(sections, provenance, derivation)
    # the same fitted selector serves predict and serve
    calibration = policy.sweep(val)
    threshold = policy.default_threshold_
    point = next(p for p in calibration if p["threshold"] == threshold)
    save_run(
        run_dir, SYNTHETIC_POOL, policy, list(CLASS_NAMES), threshold, calibration, aggregate="logits", models=models,
        operating_point={"threshold": threshold, "gflops": point["gflops"], "top1": point["top1"],
                         "measured_on": "val, the selector's training split (in-sample)"},
        notes={
            "what": "synthetic benchmark pool (weights trained here on synthetic videos; not a real-data model)",
            "seed": seed,
            "calibration_split": "val (the selector's training split)",
            "threshold_rule": "cheapest calibration point reaching the best single model's val top-1",
        },
    )
    return summary, threshold


def time_run(run_dir: Path, paths: Sequence[Path], threshold: float, progress: bool) -> dict:
    """Wall-clock latency of the run at its threshold and at a few cheaper budgets (:func:`measure_latency`)."""
    run = load_run(run_dir)
    largest = max(SYNTHETIC_POOL.gflops.values())
    more_points = sorted({run.threshold_for_budget(f * largest) for f in LATENCY_SWEEP} - {threshold})
    return measure_latency(run, paths[:LATENCY_VIDEOS], threshold, threads=LATENCY_THREADS, sweep=more_points,
                           progress=progress)


def per_class_top1(table: PredictionTable, order: list[str]) -> dict[str, dict[str, float]]:
    """Top-1 per class on the test split: where appearance suffices and where motion is needed."""
    out = {}
    for m in order:
        hits = topk_correct(table.logits[m], table.labels, 1)
        out[m] = {c: float(100 * hits[table.labels == k].mean()) for k, c in enumerate(CLASS_NAMES)}
    return out


def run_synthetic_demo(out_dir: Path, seed: int, progress: bool) -> SummaryDocument:
    """Run the stages; write ``data/``, ``{val,test}_table.npz``, ``run/``, ``curve.png`` and ``summary.json`` under ``out_dir``."""
    out_dir = Path(out_dir)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 2)
        clock = now

    data = generate(out_dir / "data", DEMO_VIDEOS, seed=seed, progress=progress)
    lap("generate")
    videos = decode_all(data.paths, SYNTHETIC_POOL.decode_short_side, progress)
    lap("decode")
    splits = split_indices(data)
    models = {}
    for i, member in enumerate(SYNTHETIC_POOL.members):
        models[member.name] = train(member, data, videos, splits["train"], seed + i, progress)
        lap(f"train_{member.name}")
    tables = {}
    for split in ("val", "test"):
        tables[split] = extract(data, videos, splits[split], models, progress)
        tables[split].save(out_dir / f"{split}_table.npz")
    lap("extract")
    summary, threshold = select(tables["val"], tables["test"], models, out_dir / "run", seed, out_dir)
    lap("selector")
    summary.latency = time_run(out_dir / "run", [data.paths[j] for j in splits["test"]], threshold, progress)
    log.info("%s", format_latency(summary.latency))
    lap("latency")
    summary.synthetic = {
        "videos": DEMO_VIDEOS,
        "splits": {s: len(i) for s, i in splits.items()},
        "classes": list(CLASS_NAMES),
        "per_class_top1": per_class_top1(tables["test"], summary.pool),
        "train_epochs": DEMO_EPOCHS,
        "seed": seed,
        "seconds": seconds,
    }
    plot_curves(summary, out_dir / "curve.png", title="Synthetic video benchmark (test split)")
    lap("report")
    seconds["total"] = round(sum(seconds.values()), 2)
    write_json(out_dir / "summary.json", summary.to_json())
    log.info("synthetic demo stages (s): %s", seconds)
    return summary
