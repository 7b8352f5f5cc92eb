"""Decode videos in DataLoader workers, in parallel with inference in the main process.

Items never raise: a video that cannot be decoded or sampled comes back as an
error message, so that one bad file costs one record and not the run (an
exception inside a worker would end the whole DataLoader). A worker process
that dies (a crash inside FFmpeg on a hostile file) or hangs is handled by
``iterate``: the items it may have held are retried in a worker process each,
and one that kills its own worker is reported as an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from condsel.datasets.manifests import ManifestEntry
from condsel.pool.views import ViewPlan, decode_for_plan, sample_views
from condsel.video.decode import VideoDecodeError

log = logging.getLogger(__name__)

# A worker that delivers nothing for this long is taken to be stuck on its file.
WORKER_TIMEOUT_S = 600
PREFETCH = 2  # videos decoded ahead per worker


class VideoViews(Dataset):
    """Item i: ``{"index": i, "windows": (K, 2) seconds, "views": {member: (K, V, T, S, S, 3) uint8}}``,
    or ``{"index": i, "error": message}``."""

    def __init__(self, entries: Sequence[ManifestEntry], plan: ViewPlan):
        self.entries = list(entries)
        self.plan = plan

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict:
        entry = self.entries[index]
        try:
            video = decode_for_plan(entry.path, self.plan)
            windows, views = sample_views(video, self.plan)
        except VideoDecodeError as e:
            return {"index": index, "error": str(e)}
        except Exception as e:  # noqa: BLE001 - any failure on one file must cost only that file
            return {"index": index, "error": f"{entry.path}: {type(e).__name__}: {e}"}
        return {"index": index, "windows": windows, "views": {m: torch.from_numpy(v) for m, v in views.items()}}


def is_worker_failure(error: Exception) -> bool:
    """A dead or hung decoding worker, however it surfaced in the main process.

    Usually PyTorch's RuntimeError; but a worker that dies while handing over
    a batch's shared memory resets the connection under the main process's
    feet (``ConnectionResetError`` from the tensor's rebuild), seen under load.
    """
    if isinstance(error, ConnectionError):
        return True
    text = str(error)
    return "DataLoader worker" in text or "DataLoader timed out" in text


def iterate(dataset: VideoViews, workers: int, handle: Callable[[dict], None], pin_memory: bool = False) -> None:
    """Call ``handle`` on every item of ``dataset``, in order.

    ``handle`` runs inside the guarded region: PyTorch reports a dead worker
    through a SIGCHLD handler that raises wherever the main process happens to
    be, so an item counts as done only when ``handle`` has returned, and one
    interrupted that way is handled again (``handle`` must be idempotent).
    Workers need no thread settings: PyTorch gives each one intra-op thread,
    and calling into OpenCV's thread pool from a forked worker can deadlock.
    """
    start, isolate_until = 0, 0
    while start < len(dataset):
        isolating = start < isolate_until
        # isolated: a worker process of its own for each video, so a death has one suspect
        stop = start + 1 if isolating else len(dataset)
        loader = _loader(Subset(dataset, range(start, stop)), 1 if isolating else workers, pin_memory)
        try:
            for item in loader:
                handle(item)
                start += 1
        except (RuntimeError, ConnectionError) as e:
            if workers == 0 or not is_worker_failure(e):
                raise
            if isolating:
                log.warning("%s: the decoding worker died on this file (%s); recorded, going on", dataset.entries[start].path, e)
                handle({"index": start, "error": f"{dataset.entries[start].path}: the decoding worker died or hung on this file: {e}"})
                start += 1
            else:
                log.warning("a decoding worker died (%s); retrying the next videos in a worker process each", e)
                # the items a dead worker may have held: the one awaited and what was prefetched
                isolate_until = min(len(dataset), start + PREFETCH * workers + 1)


def _loader(dataset: Dataset, workers: int, pin_memory: bool) -> Iterator[dict]:
    return DataLoader(
        dataset,
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin_memory,
        timeout=WORKER_TIMEOUT_S if workers else 0,
        prefetch_factor=PREFETCH if workers else None,
    )
