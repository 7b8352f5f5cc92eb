"""Run pool members on decoded videos: every view through the network, views averaged.

``run_pool`` is the unit other drivers build on (the demo here, ``extract``
at scale): it takes videos that are already decoded, so each file is decoded
once, by whoever owns the I/O, for all members at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from condsel.pool.config import PoolMember
from condsel.selection.table import PredictionTable
from condsel.video.decode import DecodedVideo
from condsel.video.sampling import ClipSpec, test_views, to_model_input


@dataclass(frozen=True)
class MemberOutputs:
    logits: np.ndarray  # (n, C) float32, mean over the member's test views
    features: np.ndarray | None  # (n, D) float32, pooled embedding, mean over views


# Views per forward pass. On a CPU, 3D conv nets run 2-3x slower per view in
# batches of 36 or more than of 9-18 (activations spill out of cache).
MAX_VIEWS_PER_PASS = 16


def run_member(clip: ClipSpec, model: nn.Module, videos: Sequence[DecodedVideo], features: bool = False) -> MemberOutputs:
    """Every test view of ``videos`` through the network, in passes of at most ``MAX_VIEWS_PER_PASS`` views.

    With ``features``, the model must offer ``forward_features`` and
    ``classify`` (as the pool's networks do), so both come from one pass.
    """
    views = to_model_input(np.concatenate([test_views(v, clip) for v in videos]))
    with torch.inference_mode():
        if features:
            embedding = torch.cat([model.forward_features(chunk) for chunk in views.split(MAX_VIEWS_PER_PASS)])
            logits = model.classify(embedding)
        else:
            embedding, logits = None, torch.cat([model(chunk) for chunk in views.split(MAX_VIEWS_PER_PASS)])

    def per_video(x: torch.Tensor) -> np.ndarray:
        return x.reshape(len(videos), clip.views, -1).mean(dim=1).numpy()

    return MemberOutputs(per_video(logits), None if embedding is None else per_video(embedding))


def run_pool(
    members: Sequence[PoolMember],
    models: Mapping[str, nn.Module],
    videos: Sequence[DecodedVideo],
    features: Sequence[str] = (),
) -> dict[str, MemberOutputs]:
    """Every member's outputs on the same decoded videos; pooled features for the members named in ``features``."""
    return {m.name: run_member(m.clip, models[m.name], videos, m.name in features) for m in members}


def pool_table(
    members: Sequence[PoolMember],
    models: Mapping[str, nn.Module],
    videos: Sequence[DecodedVideo],
    names: Sequence[str],
    labels: np.ndarray,
    gflops: Mapping[str, float],
    class_names: list[str],
    batch_size: int = 16,
    progress: bool = False,
) -> PredictionTable:
    """A PredictionTable of the pool on ``videos``, with the cheapest member's features for the selector."""
    cheapest = min(members, key=lambda m: gflops[m.name]).name
    chunks = []
    starts = range(0, len(videos), batch_size)
    for start in tqdm(starts, desc="pool outputs", unit="batch", disable=not progress):
        chunks.append(run_pool(members, models, videos[start : start + batch_size], features=[cheapest]))
    return PredictionTable(
        names=np.asarray(names),
        labels=np.asarray(labels),
        logits={m.name: np.concatenate([c[m.name].logits for c in chunks]) for m in members},
        gflops={m.name: float(gflops[m.name]) for m in members},
        features={cheapest: np.concatenate([c[cheapest].features for c in chunks])},
        class_names=list(class_names),
    )
