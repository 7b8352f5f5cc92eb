"""CAS -> scored temporal segments (ActivityNet results), with fragment-merging refinement.

For each video and each class the video-level score keeps (W-TALC's softmax
of the top-k pooled CAS >= ``class_threshold``; the top class always):

1. Multi-threshold grouping. The class's CAS track is min-max normalized inside
   the video and cut at several thresholds; each run of consecutive clips above
   a threshold is a *fragment*. One threshold suits either short or long
   actions; several give proposals at several scales.
2. Refinement in the spirit of ActionBytes (Jain et al., CVPR 2020), whose
   short video fragments serve as proposals "in isolation or when merged": a
   weak CAS dip splits one action into pieces at high thresholds, so unions of
   up to ``max_merge`` consecutive fragments (of the same threshold) separated
   by gaps of at most ``merge_gap`` clips are proposed as well. ActionBytes
   learns its fragments; here they come from the thresholded CAS.
3. Score = outer-inner contrast (mean CAS inside minus mean CAS in the flanks of
   a quarter of the segment's length on either side, as in AutoLoc/BaSNet),
   which rewards tight boundaries, plus ``video_weight`` x the class's top-k
   pooled CAS (W-TALC's detectionMAP.py adds 0.7 x that video-level score),
   which ranks segments of videos that clearly hold the class first.
4. Class-wise non-maximum suppression at ``nms_tiou`` removes the duplicates
   that the several thresholds and merges produce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from condsel.selection.method.affinity import softmax
from condsel.localization.detection_map import Detections, segment_tiou
from condsel.localization.wtalc import topk_pool


@dataclass(frozen=True)
class ProposalConfig:
    class_threshold: float = 0.1
    thresholds: tuple[float, ...] = (0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85)
    merge_gap: int = 2
    max_merge: int = 3
    video_weight: float = 0.7
    nms_tiou: float = 0.5
    topk_divisor: int = 8


def candidate_segments(level: np.ndarray, thresholds: Sequence[float], max_merge: int, max_gap: int) -> np.ndarray:
    """(n, 2) distinct [start, end) clip ranges: the runs of ``level >= t`` for every threshold t,
    plus unions of up to ``max_merge`` consecutive runs of one threshold whose gaps are all <= ``max_gap``."""
    masks = (level[None, :] >= np.asarray(thresholds)[:, None]).astype(np.int8)
    edges = np.diff(np.pad(masks, ((0, 0), (1, 1))), axis=1)
    row, start = np.nonzero(edges == 1)
    _, end = np.nonzero(edges == -1)  # row-major order pairs each run's start with its end
    gaps = np.where(row[1:] == row[:-1], start[1:] - end[:-1], max_gap + 1)
    out = [np.stack([start, end], axis=1)]
    for size in range(2, max_merge + 1):
        ok = np.ones(max(0, len(start) - size + 1), dtype=bool)
        for j in range(size - 1):
            ok &= gaps[j : j + len(ok)] <= max_gap
        first = np.flatnonzero(ok)
        out.append(np.stack([start[first], end[first + size - 1]], axis=1))
    return np.unique(np.concatenate(out).reshape(-1, 2), axis=0)


def contrast_scores(track: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Mean of ``track`` inside each [s, e) minus the mean over flanks of max(1, len/4) clips on each side."""
    prefix = np.concatenate([[0.0], np.cumsum(track, dtype=np.float64)])
    s, e = segments[:, 0], segments[:, 1]
    inner = (prefix[e] - prefix[s]) / (e - s)
    flank = np.maximum(1, np.rint((e - s) / 4).astype(np.int64))
    lo, hi = np.maximum(0, s - flank), np.minimum(len(track), e + flank)
    outer_len = (s - lo) + (hi - e)
    outer_sum = (prefix[s] - prefix[lo]) + (prefix[hi] - prefix[e])
    outer = np.divide(outer_sum, outer_len, out=np.zeros_like(inner), where=outer_len > 0)
    return inner - outer


def nms(segments: np.ndarray, scores: np.ndarray, tiou: float) -> np.ndarray:
    """Indices kept by greedy 1-D non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while len(order):
        best, order = order[0], order[1:]
        keep.append(best)
        order = order[segment_tiou(segments[best][None], segments[order]) < tiou]
    return np.asarray(keep, dtype=np.int64)


def video_detections(
    cas: np.ndarray, video: str, classes: Sequence[str], clip_seconds: float, config: ProposalConfig = ProposalConfig()
) -> Detections:
    """Scored segments (seconds) of one video from its CAS (T x C)."""
    pooled = topk_pool(torch.from_numpy(cas)[None], torch.tensor([len(cas)]), config.topk_divisor)[0].numpy()
    probs = softmax(pooled)
    kept = set(np.flatnonzero(probs >= config.class_threshold).tolist()) | {int(probs.argmax())}
    segments, scores, labels = [], [], []
    for c in sorted(kept):
        track = cas[:, c].astype(np.float64)
        span = track.max() - track.min()
        if span <= 0:
            continue
        candidates = candidate_segments((track - track.min()) / span, config.thresholds, config.max_merge, config.merge_gap)
        score = contrast_scores(track, candidates) + config.video_weight * pooled[c]
        keep = nms(candidates.astype(np.float64), score, config.nms_tiou)
        segments.append(candidates[keep])
        scores.append(score[keep])
        labels += [classes[c]] * len(keep)
    if not labels:
        return Detections.concatenate([])
    seg = np.concatenate(segments).astype(np.float64) * clip_seconds
    return Detections(np.full(len(labels), video), np.asarray(labels), seg, np.concatenate(scores))


def localize(
    cas: Sequence[np.ndarray], videos: Sequence[str], classes: Sequence[str], clip_seconds: float,
    config: ProposalConfig = ProposalConfig(),
) -> Detections:
    return Detections.concatenate([video_detections(c, v, classes, clip_seconds, config) for c, v in zip(cas, videos)])
