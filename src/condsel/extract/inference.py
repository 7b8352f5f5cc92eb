"""One video's store arrays: every pool member's scores through :func:`condsel.pool.inference.member_scores`.

Each video is scored on its own (its views are the batch, in passes of
bounded size), so a video's numbers do not depend on which other videos
share a process: one process and N processes give the same store, video for
video, and ``predict`` gives the same numbers online.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from condsel.extract.pool import ExtractionPool
from condsel.pool.device import Placement
from condsel.pool.inference import member_scores


def video_outputs(
    pool: ExtractionPool,
    views: Mapping[str, torch.Tensor],
    aggregate: str = "softmax",
    save_views: bool = False,
    placement: Placement | None = None,
) -> dict[str, np.ndarray]:
    """Store arrays for one video from each member's (K, V, T, S, S, 3) uint8 views, run at ``placement``
    (default: the models' device, fp32)."""
    arrays = {}
    for member in pool.members:
        is_backbone = member.name == pool.backbone
        out = member_scores(member, pool.models[member.name], views[member.name], aggregate, is_backbone, placement)
        arrays[f"logits/{member.name}"] = out.logits
        if save_views:
            arrays[f"views/{member.name}"] = out.views
        if is_backbone:
            arrays["features"] = out.features
    return arrays
