"""Rank and world from ``torch.distributed``, as set up by ``torchrun``.

Started by ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``
and the rendezvous address), every process joins one process group: NCCL when
it has a GPU, gloo on CPU. The group is used for barriers only (the data
moves through the store), so gloo on CPU costs nothing. Started as a plain
process, the context is a world of one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")

# Ranks wait for each other only at the start and at the end. Shards are equal
# in size, but on a long run one rank may finish hours after another; a rank
# that dies is caught by torchrun, which stops the others.
BARRIER_TIMEOUT = timedelta(hours=24)


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if not dist.is_initialized():
            return
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share: every ``world_size``-th item from ``rank`` (balanced whatever the order)."""
        return list(items[self.rank :: self.world_size])


def _device(requested: str | None, local_rank: int) -> torch.device:
    if requested:
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


@contextmanager
def distributed(device: str | None = None) -> Iterator[DistContext]:
    """The process's place in the job; joins (and finally leaves) the torchrun process group."""
    if "RANK" not in os.environ:
        yield DistContext(0, 1, 0, _device(device, 0))
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", timeout=BARRIER_TIMEOUT)
    try:
        yield DistContext(dist.get_rank(), dist.get_world_size(), local_rank, dev)
    finally:
        dist.destroy_process_group()
