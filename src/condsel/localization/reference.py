"""A per-detection loop over the ActivityNet rules: the independent check of :mod:`.detection_map`.

The vectorised :func:`~condsel.localization.detection_map.detection_map` is
compared with this plain loop, written one detection and one ground-truth
segment at a time, by the tests and by ``benchmarks/detection_map_speed.py``
(which also times both). Detections here are rows
``(video, label, start, end, score)``.
"""

from __future__ import annotations

import numpy as np

from condsel.datasets.thumos import GroundTruth
from condsel.localization.detection_map import Detections


def reference_map(gt: GroundTruth, dets: list[tuple[str, str, float, float, float]], thresholds) -> list[float]:
    """ActivityNet rules, one detection and one GT segment at a time."""
    classes = sorted({label for v in gt.videos.values() for label in v.labels})
    maps = []
    for thr in thresholds:
        aps = []
        for c in classes:
            truth = {name: [(s, e) for (s, e), label in zip(v.segments.tolist(), v.labels) if label == c] for name, v in gt.videos.items()}
            n_truth = sum(len(t) for t in truth.values())
            mine = sorted((d for d in dets if d[1] == c), key=lambda d: -d[4])  # sorted() is stable
            used = set()
            hits = []
            for video, _, start, end, _ in mine:
                best, best_iou = None, -1.0
                for j, (gs, ge) in enumerate(truth.get(video, [])):
                    if (video, j) in used:
                        continue
                    inter = max(0.0, min(end, ge) - max(start, gs))
                    union = (end - start) + (ge - gs) - inter
                    iou = inter / union if union > 0 else 0.0
                    if iou >= thr and iou > best_iou:
                        best, best_iou = j, iou
                if best is not None:
                    used.add((video, best))
                hits.append(best is not None)
            precision, recall, tp = [], [], 0
            for i, hit in enumerate(hits, 1):
                tp += hit
                precision.append(tp / i)
                recall.append(tp / n_truth)
            mprec = [0.0] + precision + [0.0]
            mrec = [0.0] + recall + [1.0]
            for i in range(len(mprec) - 2, -1, -1):
                mprec[i] = max(mprec[i], mprec[i + 1])
            aps.append(sum((mrec[i] - mrec[i - 1]) * mprec[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1]))
        maps.append(100.0 * sum(aps) / len(aps))
    return maps


def detections_from_rows(rows) -> Detections:
    return Detections(
        np.array([r[0] for r in rows], dtype=str), np.array([r[1] for r in rows], dtype=str),
        np.array([[r[2], r[3]] for r in rows], dtype=np.float64).reshape(-1, 2), np.array([r[4] for r in rows]),
    )


def generated_detections(gt: GroundTruth, n_per_segment: int, seed: int, false_alarms: int = 5):
    """Jittered copies of GT segments (some relabelled) plus random false alarms."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, v in sorted(gt.videos.items()):
        for (s, e), label in zip(v.segments.tolist(), v.labels):
            for _ in range(n_per_segment):
                length = e - s
                start = s + rng.normal(0, 0.3) * length
                end = start + length * np.exp(rng.normal(0, 0.4))
                wrong = rng.random() < 0.1
                rows.append((name, gt.classes[rng.integers(len(gt.classes))] if wrong else label, start, end, rng.random()))
        for _ in range(false_alarms):
            start = rng.uniform(0, v.duration)
            rows.append((name, gt.classes[rng.integers(len(gt.classes))], start, start + rng.uniform(0.5, 20), rng.random()))
    return rows
