"""Valid ranges of the numeric command-line flags, as argparse ``type=`` converters.

Every numeric flag of every command goes through one of these, so a value that
cannot work (``--alpha -1`` inverts the affinity, ``--folds 1`` has no held-out
fold, ``--threshold 1.5`` never routes) is a usage error before any work starts:
argparse prints ``condsel CMD: error: argument --FLAG: ...`` and exits 2, as
``condsel --help`` documents. NaN and infinities are never accepted.
"""

from __future__ import annotations

import argparse
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass


def _number(text: str, kind: type) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


@dataclass(frozen=True)
class Range:
    """One valid range, defined once: an argparse converter (``type=RANGE``) and a check for the Python API.

    The CLI says ``argument --alpha: must be >= 0, got -1``; a policy's
    ``fit`` says ``alpha: must be >= 0, got -1`` (:meth:`check`): the same
    rule in the same words, wherever the value comes from.
    """

    kind: type  # int or float
    ok: Callable[[float], bool]
    rule: str

    def __call__(self, text: str) -> int | float:
        value = _number(text, self.kind)
        if not self.ok(value):
            raise argparse.ArgumentTypeError(f"must be {self.rule}, got {text}")
        return value

    @property
    def __name__(self) -> str:  # argparse names the converter in some messages
        return self.rule

    def check(self, name: str, value) -> None:
        """Raise ``ValueError`` naming ``name`` unless ``value`` is a finite number of this kind within the range."""
        numeric = isinstance(value, numbers.Integral if self.kind is int else numbers.Real) and not isinstance(value, bool)
        if not numeric or not math.isfinite(value):
            raise ValueError(f"{name}: must be {'an integer' if self.kind is int else 'a finite number'} {self.rule}, got {value!r}")
        if not self.ok(value):
            raise ValueError(f"{name}: must be {self.rule}, got {value!r}")


def int_at_least(minimum: int) -> Range:
    """An integer >= ``minimum``: 1 for counts, 2 for cross-validation folds and curve points."""
    return Range(int, lambda v: v >= minimum, f">= {minimum}")


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)  # seeds, replicate counts (0: none), decoding workers (0: the main process)
positive_float = Range(float, lambda v: v > 0, "> 0")  # budgets, durations, rates, sizes, learning rates, temperatures
nonnegative_float = Range(float, lambda v: v >= 0, ">= 0")  # cost weights, waits, tolerances
fraction = Range(float, lambda v: 0 <= v <= 1, "in [0, 1]")  # thresholds, shares
port = Range(int, lambda v: 1 <= v <= 65535, "a port in [1, 65535]")
