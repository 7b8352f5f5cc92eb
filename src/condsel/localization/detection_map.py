"""Detection mAP under the ActivityNet rules, vectorized per class.

Rules (ActivityNet's ``eval_detection.py``, also used for THUMOS'14 by the
weakly-supervised literature):

- per class, detections are ranked by descending score (equal scores keep their
  input order);
- at each tIoU threshold, a detection is a true positive when some not yet
  matched ground-truth segment of the same video and class has tIoU >= the
  threshold; it takes the one with the highest tIoU (the first on ties), which
  is then matched; otherwise it is a false positive. Detections in videos
  without ground truth are false positives;
- AP is the all-point interpolated area under the precision-recall curve;
- mAP is the mean over the classes that have ground truth in the evaluated
  subset; a class without detections has AP 0.

The greedy matching is sequential only among detections that compete for the
same GT segments, so for each class the k-th best detection of every such group
is matched at once, for all thresholds, in one numpy step; the loop runs over
k (the largest group), not over detections.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from condsel.datasets.thumos import GroundTruth, parse_segment, read_json
from condsel._io import write_json
from condsel.errors import names_the_file

log = logging.getLogger(__name__)

THUMOS_TIOU = "0.1:0.7:0.1"
MULTITHUMOS_TIOU = "0.1:0.5:0.1"


@dataclass(frozen=True)
class Detections:
    videos: np.ndarray  # (n,) str
    labels: np.ndarray  # (n,) str
    segments: np.ndarray  # (n, 2) float64 seconds
    scores: np.ndarray  # (n,) float64

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, mask: np.ndarray) -> Detections:
        return Detections(self.videos[mask], self.labels[mask], self.segments[mask], self.scores[mask])

    @staticmethod
    def concatenate(parts: list[Detections]) -> Detections:
        if not parts:
            return Detections(np.array([], dtype=str), np.array([], dtype=str), np.zeros((0, 2)), np.zeros(0))
        return Detections(
            np.concatenate([p.videos for p in parts]),
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.segments for p in parts]).reshape(-1, 2),
            np.concatenate([p.scores for p in parts]),
        )


@dataclass(frozen=True)
class DetectionMAP:
    tiou: np.ndarray  # (T,)
    classes: tuple[str, ...]  # the classes averaged over
    ap: np.ndarray  # (C, T) in [0, 1]

    @property
    def map(self) -> np.ndarray:
        """(T,) mAP in percent."""
        return 100.0 * self.ap.mean(axis=0)

    @property
    def average_map(self) -> float:
        return float(self.map.mean())

    def to_dict(self) -> dict:
        return {"tiou": [round(float(t), 10) for t in self.tiou], "map": self.map.tolist(), "average_map": self.average_map}


def parse_tiou(spec: str) -> np.ndarray:
    """``start:stop:step`` (stop included) or a comma list, e.g. ``0.1:0.7:0.1`` or ``0.3,0.5``."""
    try:
        if ":" in spec:
            start, stop, step = (float(x) for x in spec.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            values = start + step * np.arange(int(round((stop - start) / step)) + 1)
        else:
            values = np.array([float(x) for x in spec.split(",")])
    except ValueError:
        raise ValueError(f"tIoU thresholds {spec!r}: expected start:stop:step or a comma list") from None
    values = np.round(values, 10)
    if not np.all((values > 0) & (values <= 1)):
        raise ValueError(f"tIoU thresholds {spec!r} must lie in (0, 1]")
    return values


def parse_results(doc: dict, source: str) -> Detections:
    """ActivityNet results layout ``{"results": {video: [{label, segment, score}]}}``."""
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, dict):
        raise ValueError(f"{source}: not an ActivityNet results file: no 'results' object")
    videos, labels, segments, scores = [], [], [], []
    for video, entries in results.items():
        if not isinstance(entries, list):
            raise ValueError(f"{source}: results[{video!r}] must be a list of detections")
        for row, entry in enumerate(entries):
            where = f"{source}: {video} detection {row}"
            if not isinstance(entry, dict) or not {"label", "segment", "score"} <= entry.keys():
                raise ValueError(f"{where}: needs 'label', 'segment' and 'score'")
            segments.append(parse_segment(entry["segment"], where))
            try:
                scores.append(float(entry["score"]))
            except (TypeError, ValueError):
                raise ValueError(f"{where}: score {entry['score']!r} is not a number") from None
            videos.append(str(video))
            labels.append(str(entry["label"]))
    return Detections(
        np.asarray(videos, dtype=str), np.asarray(labels, dtype=str),
        np.asarray(segments, dtype=np.float64).reshape(-1, 2), np.asarray(scores, dtype=np.float64),
    )


@names_the_file
def load_results(path: str | Path) -> Detections:
    return parse_results(read_json(Path(path)), str(path))


def results_document(detections: Detections) -> dict:
    results: dict[str, list] = {}
    for video, label, (start, end), score in zip(
        detections.videos.tolist(), detections.labels.tolist(), detections.segments.tolist(), detections.scores.tolist()
    ):
        results.setdefault(video, []).append({"label": label, "segment": [start, end], "score": score})
    return {"version": "condsel", "results": results, "external_data": {}}


def write_results(detections: Detections, path: str | Path) -> None:
    write_json(path, results_document(detections))


def segment_tiou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 2) x (..., 2) broadcast tIoU; zero-length unions give 0."""
    inter = np.clip(np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0]), 0.0, None)
    union = (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def interpolated_ap(tp: np.ndarray, n_positive: int) -> np.ndarray:
    """All-point interpolated AP of ranked hits ``tp`` (T, n) against ``n_positive`` GT segments."""
    if tp.shape[1] == 0 or n_positive == 0:
        return np.zeros(tp.shape[0])
    hits = np.cumsum(tp, axis=1, dtype=np.float64)
    precision = hits / np.arange(1, tp.shape[1] + 1)
    recall = hits / n_positive
    t = tp.shape[0]
    precision = np.hstack([np.zeros((t, 1)), precision, np.zeros((t, 1))])
    recall = np.hstack([np.zeros((t, 1)), recall, np.ones((t, 1))])
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    return (np.diff(recall, axis=1) * envelope[:, 1:]).sum(axis=1)


def _components(candidates: np.ndarray, sentinel: int) -> np.ndarray:
    """Connected-component label of each GT id, GT ids linked when one detection may take either."""
    label = np.arange(sentinel + 1)  # each id points at a smaller id of its component, or itself
    while True:
        lowest = label[candidates].min(axis=1)
        updated = label.copy()
        np.minimum.at(updated, candidates, lowest[:, None])
        updated[sentinel] = sentinel
        while not np.array_equal(updated[updated], updated):  # shortcut chains: O(log n) rounds
            updated = updated[updated]
        if np.array_equal(updated, label):
            return label
        label = updated


def match_detections(
    det_video: np.ndarray, det_segments: np.ndarray, gt_video: np.ndarray, gt_segments: np.ndarray, tiou: np.ndarray
) -> np.ndarray:
    """(T, n) true-positive flags of detections already ranked by score, for one class.

    ``det_video`` / ``gt_video`` are integer video ids (-1: a video without GT). Only detections reaching
    the lowest threshold with some GT segment can take one; a detection's
    outcome depends only on the detections that compete with it for the same
    segments, so detections are grouped into such components and the k-th best
    detection of every component is matched at once, for all thresholds. The
    loop runs over k, the size of the largest component.
    """
    n, t, m = len(det_video), len(tiou), len(gt_video)
    tp = np.zeros((t, n), dtype=bool)
    if n == 0 or m == 0:
        return tp
    # GT ids of each video as one row of a padded table; id m marks padding.
    videos, gt_row = np.unique(gt_video, return_inverse=True)
    per_video = np.bincount(gt_row, minlength=len(videos))
    gt_col = np.empty(m, dtype=np.int64)
    gt_col[np.argsort(gt_row, kind="stable")] = np.arange(m) - np.repeat(np.cumsum(per_video) - per_video, per_video)
    table = np.full((len(videos), per_video.max()), m)
    table[gt_row, gt_col] = np.arange(m)
    pos = np.minimum(np.searchsorted(videos, det_video), len(videos) - 1)
    det_idx = np.flatnonzero(videos[pos] == det_video)
    ids = table[pos[det_idx]]  # (k, G)
    padded = np.vstack([gt_segments, np.zeros((1, 2))])
    overlaps = np.where(ids < m, segment_tiou(det_segments[det_idx][:, None, :], padded[ids]), -1.0)
    # Candidates: GT reaching the lowest threshold, best tIoU first (the earlier GT on ties).
    reach = overlaps >= tiou.min()
    live = reach.any(axis=1)
    if not live.any():
        return tp
    det_idx, ids, overlaps = det_idx[live], ids[live], overlaps[live]
    width = int(reach[live].sum(axis=1).max())
    by_overlap = np.argsort(-overlaps, axis=1, kind="stable")[:, :width]
    cand_iou = np.take_along_axis(overlaps, by_overlap, axis=1)
    cand_id = np.where(cand_iou >= tiou.min(), np.take_along_axis(ids, by_overlap, axis=1), m)
    # Rank of each detection inside its component (score order is kept by the stable sort).
    group = _components(cand_id, m)[cand_id[:, 0]]
    by_group = np.argsort(group, kind="stable")
    _, sizes = np.unique(group[by_group], return_counts=True)
    rank = np.empty(len(det_idx), dtype=np.int64)
    rank[by_group] = np.arange(len(det_idx)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    order = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[order], np.arange(rank.max() + 2))
    taken = np.zeros((t, m + 1), dtype=bool)
    taken[:, m] = True  # padding is never free
    for k in range(rank.max() + 1):
        step = order[bounds[k] : bounds[k + 1]]  # at most one detection per component
        step_ids = cand_id[step]
        candidate = (cand_iou[step][None] >= tiou[:, None, None]) & ~taken[:, step_ids]  # (T, s, width)
        first = candidate.argmax(axis=2)  # candidates are sorted: the first free one is the best
        hit = candidate.any(axis=2)
        thr, which = np.nonzero(hit)
        taken[thr, step_ids[which, first[thr, which]]] = True
        tp[:, det_idx[step]] = hit
    return tp


def detection_map(
    gt: GroundTruth, detections: Detections, tiou: np.ndarray, subset: str | None = None
) -> DetectionMAP:
    """Per-class AP and mAP of ``detections`` against ``gt`` (restricted to ``subset``)."""
    unknown = sorted(set(detections.labels.tolist()) - set(gt.classes))
    if unknown:
        bad = int(np.flatnonzero(np.isin(detections.labels, unknown))[0])
        raise ValueError(
            f"detection labels not in the ground truth's classes: {unknown[:10]} "
            f"(first in video {detections.videos[bad]}); classes are {list(gt.classes)}"
        )
    if subset is not None:
        gt = gt.subset(subset)
    names = sorted(gt.videos)
    stray = ~np.isin(detections.videos, names)
    if stray.any():
        log.warning("%d detections in %d videos without ground truth in this subset count as false positives",
                    int(stray.sum()), len(set(detections.videos[stray].tolist())))
    video_id = {name: i for i, name in enumerate(names)}
    gt_video = np.array([video_id[n] for n in names for _ in gt.videos[n].labels], dtype=np.int64)
    gt_label = np.array([label for n in names for label in gt.videos[n].labels], dtype=str)
    gt_segments = np.concatenate([gt.videos[n].segments for n in names]).reshape(-1, 2)
    det_video = np.array([video_id.get(v, -1) for v in detections.videos.tolist()], dtype=np.int64)
    classes = tuple(c for c in gt.classes if np.any(gt_label == c))
    ap = np.zeros((len(classes), len(tiou)))
    for i, c in enumerate(classes):
        mine = np.flatnonzero(detections.labels == c)
        mine = mine[np.argsort(-detections.scores[mine], kind="stable")]
        truth = gt_label == c
        tp = match_detections(det_video[mine], detections.segments[mine], gt_video[truth], gt_segments[truth], tiou)
        ap[i] = interpolated_ap(tp, int(truth.sum()))
    return DetectionMAP(np.asarray(tiou, dtype=np.float64), classes, ap)


def drop_ambiguous(detections: Detections, ambiguous: dict[str, np.ndarray]) -> Detections:
    """THUMOS convention (as in W-TALC's evaluation): drop detections that overlap,
    by any positive length, an ambiguous segment of the same video, whatever the class."""
    keep = np.ones(len(detections), dtype=bool)
    for video, spans in ambiguous.items():
        rows = np.flatnonzero(detections.videos == video)
        if len(rows) == 0:
            continue
        seg = detections.segments[rows]
        overlap = np.minimum(seg[:, None, 1], spans[None, :, 1]) - np.maximum(seg[:, None, 0], spans[None, :, 0])
        keep[rows[(overlap > 0).any(axis=1)]] = False
    return detections.select(keep)
