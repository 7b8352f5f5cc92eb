"""Decode videos in worker processes, in parallel with inference in the main process.

Items never raise: a video that cannot be decoded or sampled comes back as an
error message, so that one bad file costs one record and not the run. A
worker process that dies (a crash inside FFmpeg on a hostile file) or hangs
costs exactly the video it was decoding, and nothing else.

Attribution reads state, never the timing of a signal. Each worker publishes,
in shared memory, the index it is about to decode before it starts, and
clears it only once the result is sent. The main process learns of a death
from the worker's pipe or process sentinel (select-style waits, no signal
handler), reads the exit status once the process is gone, records the
published video as failed, and puts the videos merely dispatched to that
worker back at the front of the queue for a fresh worker. PyTorch's
DataLoader, used before, reported deaths from a SIGCHLD handler that raised
wherever the main process happened to be, even inside the handling of the
same death (issue 26); nothing here can be interrupted that way.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

import torch

from condsel.datasets.manifests import ManifestEntry
from condsel.pool.views import ViewPlan, decode_for_plan, sample_views
from condsel.video.decode import VideoDecodeError

log = logging.getLogger(__name__)

# A worker that delivers nothing for this long is taken to be stuck on its file.
WORKER_TIMEOUT_S = 600
PREFETCH = 2  # videos dispatched ahead per worker
IDLE = -1  # a worker's published index between videos
STOP_GRACE_S = 2.0  # how long idle workers get to exit on their own at the end


class VideoViews:
    """Item i (:meth:`decode`): ``{"index": i, "windows": (K, 2) seconds, "views": {member: (K, V, T, S, S, 3) uint8}}``,
    or ``{"index": i, "error": message}``."""

    def __init__(self, entries: Sequence[ManifestEntry], plan: ViewPlan):
        self.entries = list(entries)
        self.plan = plan

    def __len__(self) -> int:
        return len(self.entries)

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


def _as_tensors(item: dict, pin_memory: bool = False) -> dict:
    if "views" not in item:
        return item
    views = {m: torch.from_numpy(v) for m, v in item["views"].items()}
    if pin_memory:
        views = {m: v.pin_memory() for m, v in views.items()}
    return {**item, "views": views}


def is_worker_failure(error: BaseException) -> bool:
    """A report of a dead or hung decoding process, however it surfaced.

    A broken pipe (``ConnectionResetError``, end of file), or the RuntimeError
    PyTorch's SIGCHLD handler raises when a DataLoader of the caller's own
    in this process has one. Such a report is only a prompt: who died, and
    with which video, is read from exit statuses and published indices.
    """
    if isinstance(error, (ConnectionError, EOFError)):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("DataLoader worker" in text or "DataLoader timed out" in text)


def iterate(
    dataset: VideoViews,
    workers: int,
    handle: Callable[[dict], None],
    pin_memory: bool = False,
    timeout_s: float = WORKER_TIMEOUT_S,
) -> None:
    """Call ``handle`` once on every item of ``dataset``, in the order the items are decoded.

    With ``workers`` 0 the main process decodes, in index order. Workers need
    no thread settings beyond one intra-op thread each: calling into OpenCV's
    thread pool from a forked worker can deadlock.
    """
    if workers == 0:
        for index in range(len(dataset)):
            handle(_as_tensors(dataset.decode(index), pin_memory))
        return
    with _DecodingPool(dataset, workers, timeout_s) as pool:
        for item in pool.items():
            handle(_as_tensors(item, pin_memory))


@dataclass
class _Worker:
    slot: int  # its cell in the published indices
    process: multiprocessing.process.BaseProcess
    tasks: Connection  # main -> worker: an index, or None to stop
    results: Connection  # worker -> main: items
    dispatched: deque = field(default_factory=deque)  # indices sent and not yet delivered, oldest first
    since: float = 0.0  # monotonic time of its last delivery, or of the dispatch that found it idle


class _DecodingPool:
    """Worker processes decoding a dataset, each death costing only the video its process published."""

    def __init__(self, dataset: VideoViews, workers: int, timeout_s: float):
        self.dataset = dataset
        self.timeout_s = timeout_s
        self.context = multiprocessing.get_context()
        self.published = self.context.RawArray("q", [IDLE] * workers)
        self.queue = deque(range(len(dataset)))  # not yet dispatched; re-queued videos go first
        self.ready: deque[dict] = deque()  # decoded items, and the errors of videos that killed their process
        self.workers: list[_Worker] = []
        for slot in range(min(workers, len(dataset))):
            self.workers.append(self._start(slot))

    def __enter__(self) -> _DecodingPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def items(self) -> Iterator[dict]:
        """Every item once. A death report raised anywhere in a step only prompts the next step to read the state."""
        remaining = len(self.dataset)
        while remaining:
            if self.ready:
                remaining -= 1
                yield self.ready.popleft()
                continue
            if not (self.queue or any(w.dispatched for w in self.workers)):
                raise RuntimeError(f"decoding pool lost track of {remaining} video(s)")  # a bug here, never a hang
            try:
                self._step()
            except Exception as e:  # noqa: BLE001 - re-raised unless it only reports a death
                if not is_worker_failure(e):
                    raise
                log.debug("a decoding process reported dead (%s); reading the exit statuses", e)

    def _step(self) -> None:
        self._dispatch()
        channels = [w.results for w in self.workers] + [w.process.sentinel for w in self.workers]
        wait(channels, timeout=self._wait_s())
        for worker in list(self.workers):
            self._collect(worker)

    def _dispatch(self) -> None:
        """Keep up to PREFETCH videos with every worker, spreading them in turn."""
        while self.queue:
            worker = min(self.workers, key=lambda w: len(w.dispatched))
            if len(worker.dispatched) >= PREFETCH:
                return
            index = self.queue.popleft()
            if not worker.dispatched:
                worker.since = time.monotonic()
            worker.dispatched.append(index)  # before the send: if it fails, the reaping re-queues it
            try:
                worker.tasks.send(index)
            except OSError:
                return  # its process is gone: _collect replaces it

    def _wait_s(self) -> float:
        busy = [w.since for w in self.workers if w.dispatched]
        return max(0.0, min(busy) + self.timeout_s - time.monotonic()) if busy else self.timeout_s

    def _collect(self, worker: _Worker) -> None:
        """Take what ``worker`` has sent; replace it if it died or overran the timeout."""
        broken = False
        try:
            while worker.dispatched and worker.results.poll():
                item = _receive(worker.results)
                worker.dispatched.remove(item["index"])
                worker.since = time.monotonic()
                self.ready.append(item)
        except (EOFError, OSError):
            broken = True  # it died before or while sending
        hung = bool(worker.dispatched) and time.monotonic() - worker.since > self.timeout_s
        if hung:
            worker.process.kill()
        if broken or hung or worker.process.exitcode is not None:
            self._replace(worker, hung)

    def _replace(self, worker: _Worker, hung: bool) -> None:
        """Record the video ``worker``'s process published, re-queue the others, start a fresh process.

        Idempotent: the worker's dispatched videos are taken over before
        anything that can raise, so reaping it twice blames no one twice.
        """
        worker.process.join(None if hung else self.timeout_s)  # a broken pipe precedes the exit by a moment
        if worker.process.is_alive():
            hung = True
            worker.process.kill()
            worker.process.join()
        published = self.published[worker.slot]
        culprit = published if published in worker.dispatched else None  # None: it died between videos
        in_flight = [i for i in worker.dispatched if i != culprit]
        worker.dispatched.clear()
        self.queue.extendleft(reversed(in_flight))
        if culprit is not None:
            self.ready.append(self._failed(culprit, worker.process.exitcode, hung))
        self.workers[worker.slot] = self._start(worker.slot)
        _close_channels(worker)
        # only now, with the state complete, anything that may raise (a report of another death, say)
        blamed = f"{self.dataset.entries[culprit].path} recorded as failed" if culprit is not None else "between videos"
        log.warning("a decoding process died (%s): %s, %d video(s) in flight re-queued",
                    _why(worker.process.exitcode, hung, self.timeout_s), blamed, len(in_flight))

    def _failed(self, index: int, code: int | None, hung: bool) -> dict:
        path = self.dataset.entries[index].path
        why = _why(code, hung, self.timeout_s)
        return {"index": index, "error": f"{path}: the decoding worker died or hung on this file ({why})"}

    def _start(self, slot: int) -> _Worker:
        self.published[slot] = IDLE
        task_reader, task_writer = self.context.Pipe(duplex=False)
        result_reader, result_writer = self.context.Pipe(duplex=False)
        # a forked child inherits every pipe end the main process holds; it closes them, so that
        # the main process's exit reads as end of file in every worker
        main_ends = [task_writer, result_reader] + [c for w in self.workers for c in (w.tasks, w.results)]
        process = self.context.Process(
            target=_work, args=(self.dataset, task_reader, result_writer, self.published, slot, main_ends), daemon=True
        )
        process.start()
        task_reader.close()
        result_writer.close()
        return _Worker(slot, process, task_writer, result_reader)

    def close(self) -> None:
        """Stop every worker: idle ones are asked to exit, busy or slow ones killed."""
        for worker in self.workers:
            try:
                worker.tasks.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in self.workers:
            if not worker.dispatched:
                worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join()
            _close_channels(worker)


def _why(code: int | None, hung: bool, timeout_s: float) -> str:
    if hung:
        return f"no result in {timeout_s:g} s"
    return f"killed by signal: {signal.strsignal(-code) or -code}" if code < 0 else f"exit status {code}"


def _receive(channel: Connection) -> dict:
    """One item from a worker's pipe (its own function, so that tests can make it fail as a dying worker does)."""
    return channel.recv()


def _close_channels(worker: _Worker) -> None:
    worker.tasks.close()
    worker.results.close()


def _work(dataset: VideoViews, tasks: Connection, results: Connection, published, slot: int, main_ends) -> None:
    """A worker: decode each index received, publishing it for the whole time it is being decoded and sent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    for end in main_ends:
        end.close()
    torch.set_num_threads(1)
    while True:
        try:
            index = tasks.recv()
        except (EOFError, OSError):
            return  # the main process is gone
        if index is None:
            return
        published[slot] = index
        results.send(dataset.decode(index))
        published[slot] = IDLE
