"""Clip-level model affinity for localization (paper §3.3): where the motion stream is worth running.

For a training video v with labelled classes L_v, and the two streams' CAS:

- disparity D(x) = max_{c in L_v} |CAS_rgb(x, c) - CAS_motion(x, c)| / Gamma_v, with
  Gamma_v = the largest such difference over the video's clips, so D lies in [0, 1]
  in every video. Several labelled classes combine by the max: a clip needs the
  motion stream if it does for any class the video holds;
- tau_v is set per video so that the top ``beta`` share of its clips by D
  (ceil(beta * T) clips, ties broken by clip order) have D >= tau_v and go to motion;
- pseudo-labels Q(x) = one-hot over (rgb, motion), motion for those clips;
- affinity G_k(x) = Q_k(x) * (|D(x) - tau_v| + 1): clips far from the per-video
  cut weigh more in the selector's soft cross-entropy. The pure pseudo-label
  variant uses G = Q.

Model index 0 is the RGB stream (the cheap backbone that always runs), 1 motion.
"""

from __future__ import annotations

import math

import numpy as np


def disparity(cas_rgb: np.ndarray, cas_motion: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(T,) normalized disparity over the labelled ``classes`` (indices)."""
    if cas_rgb.shape != cas_motion.shape:
        raise ValueError(f"CAS shapes differ: {cas_rgb.shape} vs {cas_motion.shape}")
    classes = np.asarray(classes, dtype=np.int64)
    if classes.size == 0:
        raise ValueError("a training video needs at least one labelled class")
    gap = np.abs(cas_rgb[:, classes] - cas_motion[:, classes]).max(axis=1)
    gamma = gap.max()
    return gap / gamma if gamma > 0 else np.zeros_like(gap)


def motion_mask(d: np.ndarray, beta: float) -> np.ndarray:
    """(T,) bool: the ceil(beta * T) clips of largest disparity (stable on ties)."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must lie in [0, 1], got {beta}")
    count = math.ceil(beta * len(d))
    mask = np.zeros(len(d), dtype=bool)
    mask[np.argsort(-d, kind="stable")[:count]] = True
    return mask


def motion_threshold(d: np.ndarray, beta: float) -> float:
    """tau_v: the smallest disparity among the clips sent to motion (1 if none is)."""
    mask = motion_mask(d, beta)
    return float(d[mask].min()) if mask.any() else 1.0


def affinity(d: np.ndarray, beta: float, soft: bool = True) -> np.ndarray:
    """(T, 2) targets over (rgb, motion): Q * (|D - tau_v| + 1), or Q alone when ``soft`` is False."""
    q = np.zeros((len(d), 2), dtype=np.float32)
    q[np.arange(len(d)), motion_mask(d, beta).astype(np.int64)] = 1.0
    if not soft:
        return q
    return q * (np.abs(d - motion_threshold(d, beta)) + 1.0)[:, None].astype(np.float32)
