"""A member's scores from its views: normalise, forward, aggregate the views, as PySlowFast tests.

:func:`member_scores` is the one function that turns a member's views into
its stored (offline) and served (online) scores; ``extract``, ``predict``,
``serve`` and the demo's pool tables all call it. Views are aggregated per
window in one of two ways:

- ``softmax``: the mean of the per-view softmax probabilities, which is what
  PySlowFast's multi-view test does (its heads apply softmax at test time and
  ``TestMeter`` sums the views, ``TEST.ENSEMBLE_METHOD = "sum"``). It is kept
  as ``log(mean p)``, a valid pre-softmax score whose softmax is that mean, so
  a table keeps one meaning for its scores.
- ``logits``: the mean of the per-view logits (the demo's pool tables).

Features are the mean of the views' pooled embeddings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from condsel._progress import progress_bar

from condsel.pool.config import PoolMember
from condsel.pool.views import member_views
from condsel.selection.data.table import PredictionTable
from condsel.video.decode import DecodedVideo

AGGREGATIONS = ("softmax", "logits")

# Views per forward pass. On a CPU, 3D conv nets run 2-3x slower per view in
# batches of 36 or more than of 9-18 (activations spill out of cache).
MAX_VIEWS_PER_PASS = 16


@dataclass(frozen=True)
class MemberOutputs:
    logits: np.ndarray  # (K, C) float32: the views' aggregated scores per window (or per video)
    features: np.ndarray | None  # (K, D) float32: pooled embedding, mean over views
    views: np.ndarray  # (K, V, C) float32: every view's logits


def normalise(views: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(B, T, S, S, 3) uint8 -> (B, 3, T, S, S) float32, per channel (x / 255 - mean) / std."""
    x = views.permute(0, 4, 1, 2, 3).float().div_(255.0)
    shape = (1, 3, 1, 1, 1)
    mean_t = torch.tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    std_t = torch.tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return x.sub_(mean_t).div_(std_t)


def aggregate_views(view_logits: torch.Tensor, method: str) -> torch.Tensor:
    """(..., V, C) per-view logits -> (..., C) per-window scores."""
    if method == "logits":
        return view_logits.mean(dim=-2)
    if method == "softmax":
        views = view_logits.shape[-2]
        return torch.logsumexp(torch.log_softmax(view_logits, dim=-1), dim=-2) - math.log(views)
    raise ValueError(f"unknown view aggregation {method!r}; expected one of {AGGREGATIONS}")


def forward(model: nn.Module, x: torch.Tensor, features: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits, and the pooled embedding if asked.

    Models with a separate ``classify`` head get both from one pass; zoo
    models without one (X3D, I3D) run ``forward_features`` once more, which
    only the backbone ever needs.
    """
    if not features:
        return model(x), None
    embedding = model.forward_features(x)
    logits = model.classify(embedding) if hasattr(model, "classify") else model(x)
    return logits, embedding


@torch.inference_mode()
def member_scores(
    member: PoolMember, model: nn.Module, views: torch.Tensor | np.ndarray, aggregate: str, features: bool = False
) -> MemberOutputs:
    """A member's scores from its (K, V, T, S, S, 3) uint8 views, on the model's device.

    The K x V views run in passes of at most ``MAX_VIEWS_PER_PASS``; each
    window's views are aggregated with ``aggregate`` (see the module docstring).
    """
    views = torch.as_tensor(views)
    k, v = views.shape[:2]
    device = next(model.parameters()).device
    flat = views.flatten(0, 1)
    logits, embeddings = [], []
    for chunk in flat.split(MAX_VIEWS_PER_PASS):
        x = normalise(chunk.to(device, non_blocking=True), member.mean, member.std)
        out, emb = forward(model, x, features)
        logits.append(out.float())
        if features:
            embeddings.append(emb.float())
    per_view = torch.cat(logits).reshape(k, v, -1)
    pooled = torch.cat(embeddings).reshape(k, v, -1).mean(dim=1).cpu().numpy() if features else None
    return MemberOutputs(aggregate_views(per_view, aggregate).cpu().numpy(), pooled, per_view.cpu().numpy())


def run_member(
    member: PoolMember,
    model: nn.Module,
    videos: Sequence[DecodedVideo],
    aggregate: str = "logits",
    features: bool = False,
) -> MemberOutputs:
    """:func:`member_scores` of whole decoded videos, one row per video."""
    views = np.concatenate([member_views(v, member.clip) for v in videos])  # (n, V, ...): one window each
    return member_scores(member, model, views, aggregate, features)


def run_pool(
    members: Sequence[PoolMember],
    models: Mapping[str, nn.Module],
    videos: Sequence[DecodedVideo],
    features: Sequence[str] = (),
    aggregate: str = "logits",
) -> dict[str, MemberOutputs]:
    """Every member's outputs on the same decoded videos; pooled features for the members named in ``features``."""
    return {m.name: run_member(m, models[m.name], videos, aggregate, m.name in features) for m in members}


def pool_table(
    members: Sequence[PoolMember],
    models: Mapping[str, nn.Module],
    videos: Sequence[DecodedVideo],
    names: Sequence[str],
    labels: np.ndarray,
    class_names: list[str],
    batch_size: int = 16,
    progress: bool = False,
) -> PredictionTable:
    """A PredictionTable of the pool on ``videos`` (mean logits), with the cheapest member's features for the selector."""
    gflops = {m.name: m.gflops_per_video for m in members}
    cheapest = min(members, key=lambda m: gflops[m.name]).name
    chunks = []
    starts = range(0, len(videos), batch_size)
    for start in progress_bar(starts, desc="pool outputs", unit="batch", disable=not progress):
        chunks.append(run_pool(members, models, videos[start : start + batch_size], features=[cheapest]))
    return PredictionTable(
        names=np.asarray(names),
        labels=np.asarray(labels),
        logits={m.name: np.concatenate([c[m.name].logits for c in chunks]) for m in members},
        gflops=gflops,
        features={cheapest: np.concatenate([c[cheapest].features for c in chunks])},
        class_names=list(class_names),
    )
