"""Conditional inference on video files: decode once, backbone, selector, chosen model.

Three ways to run the same decision, which the latency report compares:
- ``predict_video``: one video at a time, every network resident in memory;
- ``predict_video(..., load_chosen=True)``: the chosen model is read from its
  checkpoint for each selection (a pool too large to keep resident);
- ``predict_batched``: a batch of videos, the backbone on all of them, then
  one forward pass per chosen model over the videos routed to it.
``seconds`` always includes decoding.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from condsel.selection.affinity import softmax
from condsel.selection.curves import choose_models
from condsel.pool.inference import run_member
from condsel.pool.run_dir import Run
from condsel.video.decode import DecodedVideo, decode_video
from condsel.video.sampling import frames_needed


@dataclass(frozen=True)
class Prediction:
    video: str
    label: str
    score: float  # the chosen model's softmax probability of ``label``
    model: str
    gflops: float  # backbone + selector + chosen model, per video
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def decode_for(run: Run, path: str | Path, names: Sequence[str] | None = None) -> DecodedVideo:
    """Decode, once, the frames that members ``names`` (default: all) test on."""
    names = run.order if names is None else names
    select = frames_needed([run.members[n].clip for n in names])
    return decode_video(path, select, short_side=run.decode_short_side)


def _route(run: Run, videos: Sequence[DecodedVideo], threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Backbone logits (n, C) and the index in ``run.order`` of the model chosen for each video."""
    backbone = run.backbone
    logits = run_member(run.members[backbone].clip, run.models[backbone], videos).logits
    proba = run.selector.predict_proba(run.selector.features(logits))
    return logits, choose_models(proba, threshold)


def _prediction(run: Run, path, logits: np.ndarray, model: str, gflops: float, seconds: float) -> Prediction:
    probs = softmax(np.asarray(logits, dtype=np.float64))
    c = int(probs.argmax())
    return Prediction(str(path), run.class_names[c], float(probs[c]), model, float(gflops), seconds)


def _selected(run: Run, path, logits: np.ndarray, k: int, seconds: float) -> Prediction:
    return _prediction(run, path, logits, run.order[k], run.selection_costs[k], seconds)


def warm_up(run: Run) -> None:
    """Run every network once on zeros, so the first video's ``seconds`` do not include one-off kernel setup."""
    with torch.inference_mode():
        for name in run.order:
            clip = run.members[name].clip
            run.models[name](torch.zeros(clip.views, 3, clip.num_frames, clip.size, clip.size))
    run.selector.predict_proba(run.selector.features(np.zeros((1, len(run.class_names)), dtype=np.float32)))


def predict_video(run: Run, path: str | Path, threshold: float, load_chosen: bool = False) -> Prediction:
    """Select and run a model on one video. Raises ``VideoDecodeError`` for a bad file."""
    start = time.perf_counter()
    video = decode_for(run, path)
    logits, chosen = _route(run, [video], threshold)
    k = int(chosen[0])
    if k > 0:
        name = run.order[k]
        model = run.load_model(name) if load_chosen else run.models[name]
        logits = run_member(run.members[name].clip, model, [video]).logits
    return _selected(run, path, logits[0], k, time.perf_counter() - start)


def predict_with(run: Run, path: str | Path, name: str) -> Prediction:
    """Run member ``name`` alone on one video (the single-model baseline), decoding only its frames."""
    start = time.perf_counter()
    video = decode_for(run, path, [name])
    logits = run_member(run.members[name].clip, run.models[name], [video]).logits
    return _prediction(run, path, logits[0], name, run.gflops[name], time.perf_counter() - start)


def predict_batched(run: Run, paths: Sequence[str | Path], threshold: float) -> list[Prediction]:
    """Select per video, run each chosen model once over its videos; ``seconds`` is the batch time per video."""
    start = time.perf_counter()
    videos = [decode_for(run, p) for p in paths]
    logits, chosen = _route(run, videos, threshold)
    for k in np.unique(chosen[chosen > 0]):
        name = run.order[k]
        routed = np.flatnonzero(chosen == k)
        logits[routed] = run_member(run.members[name].clip, run.models[name], [videos[i] for i in routed]).logits
    per_video = (time.perf_counter() - start) / max(len(paths), 1)
    return [_selected(run, p, logits[i], int(chosen[i]), per_video) for i, p in enumerate(paths)]
