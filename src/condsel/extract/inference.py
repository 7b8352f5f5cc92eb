"""Run every pool member on one video's views and aggregate them, as PySlowFast tests.

Views are aggregated per window in one of two ways:
- ``softmax`` (default): the mean of the per-view softmax probabilities, which
  is what PySlowFast's multi-view test does (its heads apply softmax at test
  time and ``TestMeter`` sums the views, ``TEST.ENSEMBLE_METHOD = "sum"``).
  It is stored as ``log(mean p)``, a valid pre-softmax score whose softmax is
  that mean, so the table keeps one meaning for its scores.
- ``logits``: the mean of the per-view logits (what ``condsel demo``'s pool
  table holds).
Features are the mean of the views' pooled embeddings.

Each video is one forward pass per member (its views are the batch), so a
video's numbers do not depend on which other videos share a process: one
process and N processes give the same store, video for video.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from condsel.extract.pool import ExtractionPool

AGGREGATIONS = ("softmax", "logits")


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
    only the backbone, the pool's cheapest member, ever needs.
    """
    if not features:
        return model(x), None
    embedding = model.forward_features(x)
    logits = model.classify(embedding) if hasattr(model, "classify") else model(x)
    return logits, embedding


@torch.inference_mode()
def video_outputs(
    pool: ExtractionPool,
    views: Mapping[str, torch.Tensor],
    device: torch.device,
    aggregate: str = "softmax",
    save_views: bool = False,
) -> dict[str, np.ndarray]:
    """Store arrays for one video from each member's (K, V, T, S, S, 3) uint8 views."""
    arrays = {}
    for member in pool.members:
        clip_views = views[member.name]
        k, v = clip_views.shape[:2]
        x = normalise(clip_views.flatten(0, 1).to(device, non_blocking=True), member.mean, member.std)
        is_backbone = member.name == pool.backbone
        logits, embedding = forward(pool.models[member.name], x, features=is_backbone)
        logits = logits.float().reshape(k, v, -1)
        arrays[f"logits/{member.name}"] = aggregate_views(logits, aggregate).cpu().numpy()
        if save_views:
            arrays[f"views/{member.name}"] = logits.cpu().numpy()
        if is_backbone:
            arrays["features"] = embedding.float().reshape(k, v, -1).mean(dim=1).cpu().numpy()
    return arrays
