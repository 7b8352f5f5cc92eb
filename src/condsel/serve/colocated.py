"""``condsel serve --colocate``: every member in the ingress's own process, on one device, called in-process.

The per-member graph (``condsel.serve.app``) pays, for every member a video
runs, a Ray handle call and an object transfer of its frames: 7.5-27 ms per
call on a CPU (docs/serve.md), which would eat most of what a policy saves
where a small model's forward pass takes a few milliseconds (a GPU). As
Triton and TorchServe keep an ensemble's members in one server process, the
colocated service loads every member into the ingress replica: the policy's
loop awaits each member's :class:`~condsel.serve.batching.BatchedMember`
directly, on the decoded video itself (nothing is copied or serialised), and
each member still batches the videos routed to it. Replicas of the ingress
(``--replicas Ingress=N``) each hold the whole pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from condsel.pool.device import Placement
from condsel.serve.batching import BatchedMember
from condsel.serve.metrics import MemberMetrics
from condsel.serve.routing import MemberCall, MemberLoader
from condsel.video.decode import DecodedVideo


@dataclass(frozen=True)
class ColocatedMembers:
    """The members to load in the ingress's process (picklable: it travels to the replica), and how they run."""

    loaders: Mapping[str, MemberLoader]
    device: str = "cpu"
    precision: str = "fp32"
    max_batch: int = 16
    batch_wait_ms: float = 10.0
    torch_threads: int = 1

    def start(self) -> MemberCall:
        """Load every member here, on the device; return the in-process ``call(name, video)`` of the policy's loop."""
        torch.set_num_threads(self.torch_threads)
        placement = Placement.parse(self.device, self.precision)
        metrics = MemberMetrics()
        members = {}
        for name, load in self.loaders.items():
            member, model, aggregate = load()
            members[name] = BatchedMember(member, model, aggregate, placement, self.max_batch, self.batch_wait_ms, metrics)

        async def call(name: str, video: DecodedVideo):
            return await members[name](video)

        return call
