"""One pool member's batched forward pass inside a process: what a member deployment and the colocated service share.

``BatchedMember`` holds a member's network on its device and gathers the
videos asked of it within ``batch_wait_ms`` of the first (up to ``max_batch``)
into one forward pass, run in a worker thread; one batch at a time per member.
A batch that raises is rerun one video at a time, so only the videos that fail
get an error. (Not ``@serve.batch``: its queue belongs to the decorated
function, shared by every instance in a process, so colocated members would
share batches.) Whether it sits in its own
replica behind a handle (``condsel.serve.app.Member``) or beside the policy
loop in one process (``condsel.serve.colocated``) is the caller's choice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import numpy as np
import torch
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
        self.max_batch, self.wait_s = max_batch, batch_wait_ms / 1000.0
        self.queue: asyncio.Queue | None = None  # made on first use, in the replica's event loop
        clip = member.clip
        with torch.inference_mode(), placement.autocast():  # one-off kernel setup before the first request
            self.model(torch.zeros(1, 3, clip.num_frames, clip.size, clip.size, device=placement.device))

    async def __call__(self, video: DecodedVideo) -> np.ndarray:
        if self.max_batch == 1:  # unbatched: straight to a worker thread, no queue to pass through
            logits = (await asyncio.to_thread(self._forward, [video]))[0]
        else:
            if self.queue is None:
                self.queue = asyncio.Queue()
                self.gatherer = asyncio.create_task(self._gather(self.queue))
            answer = asyncio.get_running_loop().create_future()
            await self.queue.put((video, answer))
            logits = await answer
        if isinstance(logits, Exception):
            raise logits
        return logits

    async def _gather(self, queue: asyncio.Queue) -> None:
        """Forever: wait for a video, gather more until the batch is full or ``batch_wait_ms`` has passed, run it."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.wait_s
            while len(batch) < self.max_batch:
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter}, timeout=max(0.0, deadline - loop.time()))
                if not getter.done():
                    getter.cancel()  # a video that arrived meanwhile stays queued for the next batch
                    with contextlib.suppress(asyncio.CancelledError):
                        batch.append(await getter)
                    break
                batch.append(getter.result())
            try:
                results = await asyncio.to_thread(self._forward, [video for video, _ in batch])
            except Exception as e:  # _forward answers each video's own failure; this is anything else
                results = [e] * len(batch)
            for (_, answer), result in zip(batch, results):
                if not answer.done():
                    answer.set_result(result)

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
