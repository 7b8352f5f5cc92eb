"""The localization figures: disparity histogram, mAP vs GFLOPs, one video's timeline."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from condsel._io import atomic_path
from condsel.models.costs import FLOP_CONVENTION  # noqa: E402


def _save(fig, path: Path) -> None:
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    finally:
        plt.close(fig)


def disparity_histogram(d: np.ndarray, foreground: np.ndarray, path: Path, title: str) -> None:
    """Paper Fig. 5a: normalized disparity of foreground vs background clips."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    bins = np.linspace(0, 1, 26)
    ax.hist(d[~foreground], bins=bins, density=True, alpha=0.6, label=f"background ({(~foreground).sum()} clips)")
    ax.hist(d[foreground], bins=bins, density=True, alpha=0.6, label=f"foreground ({foreground.sum()} clips)")
    ax.set_xlabel("normalized disparity D(x) = |CAS_rgb - CAS_motion| / Gamma_v")
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    _save(fig, path)


def map_vs_gflops(summary: dict, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    sel = summary["curves"]["selector"]
    rnd = summary["curves"]["random"]
    ax.plot([p["gflops"] for p in sel], [p["map"] for p in sel], "o-", ms=3, label="clip selector")
    ax.errorbar([p["gflops"] for p in rnd], [p["map"] for p in rnd], yerr=[p["map_std"] for p in rnd],
                fmt="s--", ms=3, capsize=2, label=f"random clips (mean ± sd, {summary['settings']['random_seeds']} seeds)")
    for name, marker in (("rgb", "^"), ("motion", "v"), ("both", "*")):
        point = summary["streams"][name]
        ax.plot(point["gflops"], point["map"], marker, ms=9, label=f"{name} alone" if name != "both" else "both streams")
    ax.set_xlabel("GFLOPs per clip (multiply-adds; optical flow not counted)")
    ax.set_ylabel("average mAP (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.text(0.01, -0.02, FLOP_CONVENTION, fontsize=6)
    _save(fig, path)


def timeline(
    video: str, clip_seconds: float, segments: np.ndarray, cas_rgb: np.ndarray, cas_motion: np.ndarray,
    use_motion: np.ndarray, class_name: str, path: Path, title: str,
) -> None:
    """GT segments, both streams' CAS for the class and the stream chosen per clip."""
    t = (np.arange(len(cas_rgb)) + 0.5) * clip_seconds
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 3.6), sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    for s, e in segments:
        top.axvspan(s, e, color="0.85", lw=0)
    top.plot(t, cas_rgb, label="CAS rgb", lw=1.2)
    top.plot(t, cas_motion, label="CAS motion", lw=1.2)
    top.set_ylabel(f"CAS ({class_name})")
    top.legend(fontsize=7, loc="upper right")
    top.set_title(f"{title}: {video} (grey: ground truth)", fontsize=9)
    bottom.bar(t, np.ones_like(t), width=clip_seconds, color=np.where(use_motion, "tab:orange", "tab:blue"))
    bottom.set_yticks([])
    bottom.set_ylabel("stream", fontsize=7)
    bottom.set_xlabel("seconds (orange: motion runs, blue: rgb only)")
    _save(fig, path)
