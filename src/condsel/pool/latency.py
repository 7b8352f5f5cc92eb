"""Measured wall-clock latency of conditional inference against the largest model alone.

The paper's point (Fig. 4b) is that GFLOPs saved are seconds saved; here that
is measured on real files, decoding included, with a fixed number of torch
threads so that runs are comparable. Modes:
- ``largest``: the costliest member alone, one video at a time, resident;
- ``selector``: backbone + selector + chosen model, one video at a time, resident;
- ``selector_load_per_selection``: as ``selector``, but the chosen model is
  read from its checkpoint for every selection;
- ``largest_batched`` / ``selector_batched``: batches of videos, the selector
  grouping each batch by chosen model.
``speedup_ratio`` = (wall-clock speedup) / (GFLOPs speedup) of ``selector``
over ``largest``: 1 means every GFLOP saved is time saved.

This module measures and returns data; :func:`condsel.report.text.format_latency`
writes it for the terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from condsel._progress import progress_bar

from condsel.pool.inference import run_member
from condsel.pool.predict import (
    Prediction,
    decode_for,
    predict_batched,
    predict_video,
    predict_with,
)
from condsel.pool.run_dir import Run
from condsel._io import torch_threads


def _batched(run_batch: Callable[[Sequence[Path]], object], paths: Sequence[Path], batch_size: int) -> float:
    """Seconds per video over all batches."""
    run_batch(paths[:batch_size])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(paths), batch_size):
        run_batch(paths[i : i + batch_size])
    return (time.perf_counter() - start) / len(paths)


def measure_latency(
    run: Run,
    paths: Sequence[str | Path],
    threshold: float,
    threads: int = 1,
    batch_size: int = 16,
    warmup: int = 3,
    repeats: int = 2,
    sweep: Sequence[float] = (),
    progress: bool = False,
) -> dict:
    """Seconds and GFLOPs per video of every mode on ``paths``; see the module docstring.

    ``sweep``: more thresholds to time the one-video selector at. With them,
    ``overhead_fit`` fits seconds = a + b * GFLOPs over every timed point: a is
    what each video costs whatever runs (decoding, per-call overheads), b the
    time per GFLOP.

    The one-video modes take turns on each video, so a burst of load from
    elsewhere on the machine hits them alike. Each video's time is its best of
    ``repeats`` runs (which drops such bursts), and a mode's time is the mean
    over videos: a mean, not a median, because the selector's times are
    bimodal (cheap model or costly model) and their mean is the throughput.
    """
    paths = [Path(p) for p in paths]
    largest = max(run.order, key=lambda m: run.gflops[m])
    member = run.members[largest]
    modes: dict[str, Callable[[Path], Prediction]] = {
        "largest": lambda p: predict_with(run, p, largest),
        "selector": lambda p: predict_video(run, p, threshold),
        "selector_load_per_selection": lambda p: predict_video(run, p, threshold, load_chosen=True),
        **{f"sweep_{t}": (lambda p, t=t: predict_video(run, p, t)) for t in sweep},
    }

    def largest_batch(batch: Sequence[Path]) -> None:
        run_member(member, run.models[largest], [decode_for(run, p, [largest]) for p in batch], run.aggregate)

    with torch_threads(threads), torch.no_grad():
        for p in paths[:warmup]:
            for mode in modes.values():
                mode(p)
        runs: dict[str, list[Prediction]] = {name: [] for name in modes}
        for p in progress_bar(paths, desc="latency", unit="video", disable=not progress, leave=False):
            for name, mode in modes.items():
                runs[name].append(min((mode(p) for _ in range(repeats)), key=lambda r: r.seconds))
        largest_batched = _batched(largest_batch, paths, batch_size)
        selector_batched = _batched(lambda b: predict_batched(run, b, threshold), paths, batch_size)

    seconds = {name: float(np.mean([p.seconds for p in preds])) for name, preds in runs.items()}
    gflops = {name: float(np.mean([p.gflops for p in preds])) for name, preds in runs.items()}
    selector_gflops = gflops["selector"]
    points = [
        {"threshold": float(t), "gflops": gflops[f"sweep_{t}"], "seconds_per_video": seconds[f"sweep_{t}"]} for t in sweep
    ] + [{"threshold": float(threshold), "gflops": selector_gflops, "seconds_per_video": seconds["selector"]}]
    fit_x = [p["gflops"] for p in points] + [run.gflops[largest]]
    fit_y = [p["seconds_per_video"] for p in points] + [seconds["largest"]]
    per_gflop, fixed = np.polyfit(fit_x, fit_y, 1)
    wall_speedup = seconds["largest"] / seconds["selector"]
    gflops_speedup = run.gflops[largest] / selector_gflops
    return {
        "largest": {"model": largest, "seconds_per_video": seconds["largest"], "gflops": run.gflops[largest]},
        "selector": {"seconds_per_video": seconds["selector"], "gflops": selector_gflops, "threshold": float(threshold)},
        "selector_load_per_selection": {"seconds_per_video": seconds["selector_load_per_selection"], "gflops": selector_gflops},
        "largest_batched": {"seconds_per_video": largest_batched, "gflops": run.gflops[largest], "batch_size": batch_size},
        "selector_batched": {"seconds_per_video": selector_batched, "gflops": selector_gflops, "batch_size": batch_size},
        "wall_speedup": wall_speedup,
        "gflops_speedup": gflops_speedup,
        "speedup_ratio": wall_speedup / gflops_speedup,
        "chosen_share": {m: float(np.mean([p.model == m for p in runs["selector"]])) for m in run.order},
        "operating_points": sorted(points, key=lambda p: p["gflops"]),
        "overhead_fit": {"seconds_at_zero_gflops": float(fixed), "seconds_per_gflop": float(per_gflop)},
        "videos": len(paths),
        "torch_threads": threads,
        "statistic": f"one-video modes: mean over videos of each video's best of {repeats} runs; batched: total time / videos",
        "includes": "decoding, sampling, every network run, the selector; networks resident unless stated",
    }
