"""Fig. 3b: test views per video (clips x crops) against accuracy and GFLOPs.

Multi-view testing averages a model's logits over ``clips`` temporal clips x
``crops`` spatial crops; each view costs the same, so GFLOPs grow linearly
with the views while accuracy saturates. The input is per-view logits,
(N, V, C) per model with V = clips x crops in clip-major order (the order
``condsel.video.sampling.test_views`` produces). Published score files
(e.g. the UCF101 ones) are already averaged over their views, so this runs on
a pool whose views can be recomputed, such as the demo's synthetic one
(:func:`per_view_scores_from_run`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from condsel._progress import progress_bar

from condsel._io import atomic_path
from condsel.selection.method.metrics import topk_correct


@dataclass
class PerViewScores:
    """Every view's logits of every model, before the views are averaged."""

    names: np.ndarray  # (N,)
    labels: np.ndarray  # (N,) class index
    views: dict[str, np.ndarray]  # model -> (N, clips * crops, C), clip-major
    layout: dict[str, tuple[int, int]]  # model -> (clips, crops)
    gflops_per_view: dict[str, float]
    class_names: list[str] | None = None

    def __post_init__(self) -> None:
        self.names = np.asarray(self.names).astype(str)
        self.labels = np.asarray(self.labels)
        n = len(self.names)
        if self.labels.shape != (n,) or not np.issubdtype(self.labels.dtype, np.integer):
            raise ValueError(f"labels must be ({n},) class indices, got {self.labels.shape} {self.labels.dtype}")
        for m, v in self.views.items():
            clips, crops = self.layout.get(m, (0, 0))
            if np.ndim(v) != 3 or v.shape[0] != n or v.shape[1] != clips * crops:
                raise ValueError(f"model {m!r}: views have shape {np.shape(v)}, expected ({n}, {clips} x {crops}, C)")
            if m not in self.gflops_per_view:
                raise ValueError(f"model {m!r}: no GFLOPs per view")
            if self.labels.max() >= v.shape[2]:
                raise ValueError(f"model {m!r}: {v.shape[2]} classes, but a label is {self.labels.max()}")

    def save(self, path: str | Path) -> None:
        """A pickle-free npz, written atomically."""
        arrays = {"names": self.names, "labels": self.labels, **{f"views/{m}": v for m, v in self.views.items()}}
        arrays["layout_json"] = np.asarray(json.dumps({m: list(v) for m, v in self.layout.items()}))
        arrays["gflops_per_view_json"] = np.asarray(json.dumps(self.gflops_per_view))
        if self.class_names is not None:
            arrays["class_names"] = np.asarray(self.class_names, dtype=str)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> PerViewScores:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            layout = {m: (int(c), int(k)) for m, (c, k) in json.loads(str(arrays["layout_json"])).items()}
            return cls(
                names=arrays["names"],
                labels=arrays["labels"],
                views={k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("views/")},
                layout=layout,
                gflops_per_view={m: float(g) for m, g in json.loads(str(arrays["gflops_per_view_json"])).items()},
                class_names=[str(c) for c in arrays["class_names"]] if "class_names" in arrays else None,
            )
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise ValueError(f"{path}: not a per-view score file (names, labels, views/<model>, layout_json, "
                             f"gflops_per_view_json): {e}") from e


def views_accuracy(
    views: np.ndarray, labels: np.ndarray, clips: int, crops: int, gflops_per_view: float, draws: int = 20, seed: int = 0
) -> list[dict]:
    """Top-1 (%) of averaging c random clips x k random crops of every video, for every c <= clips, k <= crops.

    Each video draws its own clips and crops, ``draws`` times; ``top1`` is the
    mean over draws (the expected accuracy of testing on that many views),
    ``top1_std`` their spread. Cost is c x k views.
    """
    n, v, _ = views.shape
    if v != clips * crops:
        raise ValueError(f"{v} views per video, expected {clips} clips x {crops} crops")
    grid = views.reshape(n, clips, crops, -1)
    rng = np.random.default_rng(seed)
    rows = np.arange(n)[:, None, None]
    points = []
    for c in range(1, clips + 1):
        for k in range(1, crops + 1):
            runs = []
            for _ in range(draws):
                pick_c = rng.permuted(np.tile(np.arange(clips), (n, 1)), axis=1)[:, :c, None]
                pick_k = rng.permuted(np.tile(np.arange(crops), (n, 1)), axis=1)[:, None, :k]
                mean_logits = grid[rows, pick_c, pick_k].reshape(n, c * k, -1).mean(axis=1)
                runs.append(100 * topk_correct(mean_logits, labels, 1).mean())
            points.append(
                {"clips": c, "crops": k, "views": c * k, "gflops": c * k * gflops_per_view,
                 "top1": float(np.mean(runs)), "top1_std": float(np.std(runs))}
            )
    return points


def views_analysis(scores: PerViewScores, draws: int = 20, seed: int = 0) -> dict:
    """Every model's accuracy and GFLOPs per video as a function of its test views."""
    return {
        "models": {
            m: {
                "clips": scores.layout[m][0],
                "crops": scores.layout[m][1],
                "gflops_per_view": scores.gflops_per_view[m],
                "points": views_accuracy(
                    scores.views[m], scores.labels, *scores.layout[m], scores.gflops_per_view[m], draws, seed
                ),
            }
            for m in scores.views
        },
        "videos": int(len(scores.names)),
        "draws": draws,
        "seed": seed,
        "averaging": "logits averaged over the chosen views (as at test time)",
    }


def per_view_scores_from_run(
    run, entries: Sequence, batch_size: int = 16, progress: bool = False
) -> tuple[PerViewScores, dict[str, str]]:
    """Every member's per-view logits on manifest entries (``ManifestEntry``), recomputed with a loaded run.

    ``run`` is a :class:`condsel.pool.run_dir.Run`. Each video is decoded once
    for all members, and each member runs on the views of ``batch_size``
    videos at a time, single-threaded: on a busy 2-core machine these small
    networks run several times slower with two threads. A video that cannot
    be decoded is left out and returned in the failures (name -> reason).
    """
    from condsel._io import torch_threads
    from condsel.pool.inference import run_member
    from condsel.pool.predict import decode_for
    from condsel.video.decode import VideoDecodeError

    per_model: dict[str, list[np.ndarray]] = {m: [] for m in run.order}
    kept, failures = [], {}
    starts = range(0, len(entries), batch_size)
    with torch.no_grad(), torch_threads(1):
        for start in progress_bar(starts, desc="per-view logits", unit="batch", disable=not progress):
            videos = []
            for entry in entries[start : start + batch_size]:
                try:
                    videos.append(decode_for(run, entry.path))
                    kept.append(entry)
                except VideoDecodeError as e:
                    failures[entry.name] = str(e)
            if not videos:
                continue
            for m in run.order:
                per_model[m].append(run_member(run.members[m], run.models[m], videos, run.aggregate).views)
    if not kept:
        raise ValueError(f"none of the {len(entries)} videos could be decoded, e.g. {next(iter(failures.values()), '')}")
    scores = PerViewScores(
        names=np.array([e.name for e in kept]),
        labels=np.array([e.label for e in kept], dtype=np.int64),
        views={m: np.concatenate(v) for m, v in per_model.items()},
        layout={m: (run.members[m].clip.clips, run.members[m].clip.crops) for m in run.order},
        gflops_per_view={m: run.gflops[m] / run.members[m].clip.views for m in run.order},
        class_names=list(run.class_names),
    )
    return scores, failures
