"""Train one pool member on decoded videos held in memory.

The videos are decoded once (by the caller) and resized once per member; each
step then only cuts a random clip and crop, so an epoch costs the network's
compute and little else. One-cycle schedule with AdamW: short CPU budgets
(a few hundred steps) converge far better with warm-up and annealing than
with a constant rate.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from condsel._progress import progress_bar

from condsel.pool.config import PoolMember
from condsel.video.decode import DecodedVideo
from condsel.video.sampling import resize_short_side, to_model_input, train_view

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 4
    batch_size: int = 24
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1


def train_member(
    member: PoolMember,
    videos: Sequence[DecodedVideo],
    labels: np.ndarray,
    config: TrainConfig = TrainConfig(),
    seed: int = 0,
    progress: bool = False,
) -> nn.Module:
    """``member``'s network, freshly initialised (or from its checkpoint), trained on every frame of ``videos``; in eval mode."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(videos) != len(labels) or len(videos) == 0:
        raise ValueError(f"{len(videos)} videos but {len(labels)} labels")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = member.build(random_weights=True).train()
    frames = [resize_short_side(v.frames, member.clip.size) for v in videos]
    steps_per_epoch = -(-len(videos) // config.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch, pct_start=0.2
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    bar = progress_bar(total=config.epochs * steps_per_epoch, desc=f"train {member.name}", unit="step", disable=not progress)
    for epoch in range(config.epochs):
        total = 0.0
        for idx in np.array_split(rng.permutation(len(videos)), steps_per_epoch):
            views = np.stack([train_view(frames[i], member.clip, videos[i].fps, rng) for i in idx])
            loss = loss_fn(model(to_model_input(views)), torch.from_numpy(labels[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            value = loss.item()
            total += value * len(idx)
            bar.update()
            bar.set_postfix(loss=f"{value:.3f}")
        log.debug("%s epoch %d: mean loss %.4f", member.name, epoch + 1, total / len(videos))
    bar.close()
    return model.eval()
