"""Progress on stderr: a tqdm bar on a terminal, one line per stage anywhere else.

A bar redraws itself with carriage returns; written to a file or a pipe
(``condsel demo 2> log``, CI) every redraw stays, and one demo left 98 KB
of them. :func:`progress_bar` takes tqdm's arguments and, when stderr is not a
terminal, returns :class:`StageLines` instead: one line when the stage
starts and one when it ends, with its count and time.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable

from tqdm import tqdm


def progress_bar(iterable: Iterable | None = None, *, desc: str = "", total: int | None = None, unit: str = "it",
             disable: bool = False, **tqdm_options):
    """A tqdm bar where stderr is a terminal; :class:`StageLines` where it is not; a silent bar when ``disable``."""
    if disable or sys.stderr.isatty():
        return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable, **tqdm_options)
    return StageLines(iterable, desc=desc, total=total, unit=unit)


class StageLines:
    """The part of tqdm's interface condsel uses (iterate, ``update``, ``total``, ``set_postfix``, ``close``), as two lines."""

    def __init__(self, iterable: Iterable | None = None, desc: str = "", total: int | None = None, unit: str = "it") -> None:
        self.iterable, self.desc, self.unit = iterable, desc, unit
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.n, self.postfix = total, 0, ""
        self._start, self._closed = time.perf_counter(), False
        self._write(f"{desc}: started" + (f" ({total} {unit})" if total else ""))

    def _write(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.n += 1
        self.close()

    def __enter__(self) -> StageLines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def refresh(self) -> None:
        """Nothing to redraw: the end line says the final count."""

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        seconds = time.perf_counter() - self._start
        self._write(f"{self.desc}: done, {self.n} {self.unit} in {seconds:.1f} s" + (f" ({self.postfix})" if self.postfix else ""))
