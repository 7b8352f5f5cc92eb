"""Forked worker processes that inherit the caller's state (tables, fits, shared arrays) instead of receiving it."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

_IN_WORKER = False  # set in forked workers
_TASK: Callable | None = None  # the function the workers apply, inherited at fork rather than pickled


def every_core() -> int:
    """The default worker count of the commands and the Python API: one process per core."""
    return os.cpu_count() or 1


def in_worker() -> bool:
    """Whether this process is one of :func:`forked_imap`'s workers."""
    return _IN_WORKER


def _start_worker() -> None:
    global _IN_WORKER
    _IN_WORKER = True


def _apply(item):
    return _TASK(item)


def forked_imap(fn: Callable, items: Iterable, workers: int) -> Iterator:
    """``fn(x)`` for each item, in order, by up to ``workers`` forked processes when there are several items.

    The workers inherit what ``fn`` reads (a table, fits, a closure over
    them) at fork, so only the items and the results are pickled. Each item
    is computed alone, so the results do not depend on the worker count.
    """
    global _TASK
    items = list(items)
    if workers <= 1 or len(items) < 2:
        yield from map(fn, items)
        return
    _TASK = fn
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(workers, len(items)), mp_context=context, initializer=_start_worker) as pool:
            yield from pool.map(_apply, items)
    finally:
        _TASK = None


def forked_map(fn: Callable, items: Iterable, workers: int) -> list:
    """``[fn(x) for x in items]`` by :func:`forked_imap`."""
    return list(forked_imap(fn, items, workers))
