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

from condsel.pool.members import PoolMember
from condsel.table import PredictionTable
from condsel.video.decode import DecodedVideo
from condsel.video.sampling import test_views, to_model_input


@dataclass(frozen=True)
class MemberOutputs:
    logits: np.ndarray  # (n, C) float32, mean over the member's test views
    features: np.ndarray  # (n, D) float32, pooled embedding, mean over views


def run_member(member: PoolMember, model: nn.Module, videos: Sequence[DecodedVideo]) -> MemberOutputs:
    """One batched forward pass over all test views of ``videos``."""
    views = np.concatenate([test_views(v, member.clip) for v in videos])
    with torch.no_grad():
        features = model.forward_features(to_model_input(views))
        logits = model.classify(features)
    per_video = member.clip.views
    return MemberOutputs(
        logits=logits.reshape(len(videos), per_video, -1).mean(dim=1).numpy(),
        features=features.reshape(len(videos), per_video, -1).mean(dim=1).numpy(),
    )


def run_pool(
    members: Sequence[PoolMember], models: Mapping[str, nn.Module], videos: Sequence[DecodedVideo]
) -> dict[str, MemberOutputs]:
    """Every member's outputs on the same decoded videos."""
    return {m.name: run_member(m, models[m.name], videos) for m in members}


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
    chunks = []
    starts = range(0, len(videos), batch_size)
    for start in tqdm(starts, desc="pool outputs", unit="batch", disable=not progress):
        chunks.append(run_pool(members, models, videos[start : start + batch_size]))
    cheapest = min(members, key=lambda m: gflops[m.name]).name
    return PredictionTable(
        names=np.asarray(names),
        labels=np.asarray(labels),
        logits={m.name: np.concatenate([c[m.name].logits for c in chunks]) for m in members},
        gflops={m.name: float(gflops[m.name]) for m in members},
        features={cheapest: np.concatenate([c[cheapest].features for c in chunks])},
        class_names=list(class_names),
    )
