"""One pool member's batched forward pass inside a process: what a member deployment and the colocated service share.

``BatchedMember`` holds a member's network on its device and gathers the
videos asked of it within ``batch_wait_ms`` (up to ``max_batch``) into one
forward pass with ``@serve.batch``. A batch that raises is rerun one video at
a time, so only the videos that fail get an error. Whether it sits in its own
replica behind a handle (``condsel.serve.app.Member``) or beside the policy
loop in one process (``condsel.serve.colocated``) is the caller's choice.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
import torch
from ray import serve
from torch import nn

from condsel.pool.config import PoolMember
from condsel.pool.device import Placement
from condsel.pool.inference import run_member
from condsel.serve.metrics import MemberMetrics
from condsel.video.decode import DecodedVideo

log = logging.getLogger(__name__)


class BatchedMember:
    """A member's network, resident on ``placement``'s device, behind a batched forward pass."""

    def __init__(self, member: PoolMember, model: nn.Module, aggregate: str, placement: Placement,
                 max_batch: int, batch_wait_ms: float, metrics: MemberMetrics):
        self.member, self.aggregate, self.placement, self.metrics = member, aggregate, placement, metrics
        self.model = placement.place(model)
        self.forward.set_max_batch_size(max_batch)
        self.forward.set_batch_wait_timeout_s(batch_wait_ms / 1000.0)
        clip = member.clip
        with torch.inference_mode(), placement.autocast():  # one-off kernel setup before the first request
            self.model(torch.zeros(1, 3, clip.num_frames, clip.size, clip.size, device=placement.device))

    async def __call__(self, video: DecodedVideo) -> np.ndarray:
        logits = await self.forward(video)
        if isinstance(logits, Exception):
            raise logits
        return logits

    @serve.batch
    async def forward(self, videos: list[DecodedVideo]) -> list:
        return await asyncio.to_thread(self._forward, videos)

    def _forward(self, videos: list[DecodedVideo]) -> list:
        start = time.perf_counter()
        try:
            results = list(run_member(self.member, self.model, videos, self.aggregate, placement=self.placement).logits)
        except Exception as e:
            if len(videos) == 1:
                log.exception("member %s forward failed on %s", self.member.name, videos[0].path)
                return [e]
            results = [self._forward([v])[0] for v in videos]
        self.metrics.batch(self.member.name, len(videos), time.perf_counter() - start)
        return results
