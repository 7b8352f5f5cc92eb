"""Scoped control of torch's intra-op threads."""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(count: int):
    """Temporarily run torch with ``count`` threads.

    Small networks on small batches (the selector, W-TALC heads) spend their
    time in per-op overhead, where extra threads only add synchronisation: UCF101
    5-fold selector CV took 7.6 s with 1 thread and 43 s with 2 on busy cores.
    Latency measurements also pin the thread count so runs compare.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
