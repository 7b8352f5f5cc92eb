"""Fig. 4b: measured seconds per video against accuracy, for each way of running the pool.

The timings come from the ``latency`` block a run's ``summary.json`` holds
(``condsel demo`` measures it: see :mod:`condsel.pool.latency`); the accuracy
of each mode is that of its policy on the run's test split: the largest
model's top-1, or the selector's top-1 at the timed threshold, read off the
summary's threshold sweep. Resident, per-selection loading and batched
execution run the same policy, so they share an accuracy and differ in time.
"""

from __future__ import annotations

from condsel.selection.evaluation.document import SummaryDocument

MODES = {
    "largest": "largest model alone, resident",
    "largest_batched": "largest model alone, batched",
    "selector": "selector policy, pool resident",
    "selector_load_per_selection": "selector policy, chosen model loaded per selection",
    "selector_batched": "selector policy, batched by chosen model",
}


def accuracy_at_threshold(selector_curve: list[dict], threshold: float, metric: str = "top1") -> float:
    """The sweep's value at ``threshold``: the summary keeps the first threshold of each run of equal points."""
    below = [p for p in selector_curve if p["threshold"] <= threshold + 1e-12]
    if not below:
        raise ValueError(f"threshold {threshold} lies below the sweep's first threshold {selector_curve[0]['threshold']}")
    return float(max(below, key=lambda p: p["threshold"])[metric])


def latency_points(doc: SummaryDocument) -> dict:
    """One point per timed mode: seconds/video, GFLOPs/video and the policy's top-1 (%)."""
    latency = doc.latency
    if not latency:
        raise ValueError("this summary has no 'latency' block (condsel demo measures one)")
    largest = latency["largest"]["model"]
    accuracy = {
        "largest": doc.models[largest]["top1"],
        "selector": accuracy_at_threshold(doc.curves.selector, latency["selector"]["threshold"]),
    }
    points = [
        {
            "mode": mode,
            "label": label,
            "seconds_per_video": float(latency[mode]["seconds_per_video"]),
            "gflops": float(latency[mode]["gflops"]),
            "top1": float(accuracy[mode.split("_", 1)[0]]),
            **({"batch_size": latency[mode]["batch_size"]} if "batch_size" in latency[mode] else {}),
        }
        for mode, label in MODES.items()
        if mode in latency
    ]
    return {
        "largest_model": largest,
        "threshold": float(latency["selector"]["threshold"]),
        "points": points,
        "videos_timed": latency.get("videos"),
        "torch_threads": latency.get("torch_threads"),
        "includes": latency.get("includes"),
        "wall_speedup": latency.get("wall_speedup"),
        "gflops_speedup": latency.get("gflops_speedup"),
        "accuracy_from": f"accuracy on the run's test split; timings on {latency.get('videos', 'some')} of its videos",
    }
