"""Decode videos in DataLoader workers, in parallel with inference in the main process.

Items never raise: a video that cannot be decoded or sampled comes back as an
error message, so that one bad file costs one record and not the run (an
exception inside a worker would end the whole DataLoader). A worker process
that dies (a crash inside FFmpeg on a hostile file) or hangs is handled by
``iterate``: every video that was in flight is decoded again in a fresh
process of its own, and only a video that kills (or hangs) its own process is
reported as an error.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

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
        return _as_tensors(self.decode(index))

    def decode(self, index: int) -> dict:
        """The item with numpy views: plain arrays, which any pipe carries."""
        entry = self.entries[index]
        try:
            video = decode_for_plan(entry.path, self.plan)
            windows, views = sample_views(video, self.plan)
        except VideoDecodeError as e:
            return {"index": index, "error": str(e)}
        except Exception as e:  # noqa: BLE001 - any failure on one file must cost only that file
            return {"index": index, "error": f"{entry.path}: {type(e).__name__}: {e}"}
        return {"index": index, "windows": windows, "views": views}


def _as_tensors(item: dict) -> dict:
    if "views" not in item:
        return item
    return {**item, "views": {m: torch.from_numpy(v) for m, v in item["views"].items()}}


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
    That report does not say which video killed the worker, so after a death
    every video in flight (the one awaited and those dispatched ahead of it)
    is decoded again in a process of its own (:func:`decode_alone`), whose
    own exit status is the only evidence against it.
    Workers need no thread settings: PyTorch gives each one intra-op thread,
    and calling into OpenCV's thread pool from a forked worker can deadlock.
    """
    start = 0
    while start < len(dataset):
        batches = iter(_loader(Subset(dataset, range(start, len(dataset))), workers, pin_memory))
        try:
            for item in batches:
                handle(item)
                start += 1
            return
        except (RuntimeError, ConnectionError) as e:
            if workers == 0 or not is_worker_failure(e):
                raise
            log.warning("a decoding worker died (%s); decoding the videos in flight in a process each", e)
        finally:
            _close(batches)
        # a worker holds up to PREFETCH dispatched videos; the loader dispatches the next one on each delivery
        for index in range(start, min(len(dataset), start + PREFETCH * workers + 1)):
            handle(decode_alone(dataset, index))
            start += 1


def decode_alone(dataset: VideoViews, index: int, timeout_s: float = WORKER_TIMEOUT_S) -> dict:
    """Item ``index`` decoded in a fresh process of its own, or an error item if that process dies or hangs."""
    path = dataset.entries[index].path
    context = multiprocessing.get_context()  # the start method DataLoader workers use
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=_decode_into, args=(dataset, index, writer), daemon=True)
    process.start()
    writer.close()  # the child holds the only writer now: its death reads as end of file
    item, hung = None, False
    try:
        if reader.poll(timeout_s):
            item = reader.recv()
        else:
            hung = True
    except (EOFError, OSError):
        pass  # it died before or while sending
    finally:
        reader.close()
        if not hung:
            process.join(timeout_s)  # it has sent its item or died: it ends at once
        if process.is_alive():
            hung = True
            process.kill()
        process.join()
    if item is not None and process.exitcode == 0:
        return _as_tensors(item)
    code = process.exitcode
    why = (f"no result in {timeout_s:g} s" if hung
           else f"killed by signal: {signal.strsignal(-code) or -code}" if code < 0 else f"exit status {code}")
    log.warning("%s: the decoding worker died or hung on this file (%s); recorded, going on", path, why)
    return {"index": index, "error": f"{path}: the decoding worker died or hung on this file ({why})"}


def _decode_into(dataset: VideoViews, index: int, writer) -> None:
    torch.set_num_threads(1)
    writer.send(dataset.decode(index))
    writer.close()


def _close(batches: Iterator[dict]) -> None:
    """Stop a loader's workers now, with child exits unreported meanwhile.

    Left to garbage collection, a loader with a dead worker stays registered
    with PyTorch's SIGCHLD handler, which then raises that old death again at
    the next child exit, blaming whatever video runs then; and the survivors'
    exits during shutdown would raise it too. ``_shutdown_workers`` is what
    the iterator's own ``__del__`` calls.
    """
    shutdown = getattr(batches, "_shutdown_workers", None)  # absent without worker processes
    if shutdown is None:
        return
    with _child_exits_unreported():
        shutdown()


@contextmanager
def _child_exits_unreported():
    """SIGCHLD to its default (nothing) for the block; a no-op off the main thread, where PyTorch installs none."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL if previous is None else previous)


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
