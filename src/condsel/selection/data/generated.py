"""A generated pool where the order members run in matters: a cheap generalist, two half-class specialists, a costly generalist.

Each specialist is strong on one half of the classes and weak on the other.
The cheap generalist confuses classes mostly within a half (as a coarse
category is easier than the fine class), so its prediction says which
specialist to run. A fixed-order cascade must pay for the specialist it
meets first, right or not; a policy that chooses the next member from what
it has seen (:class:`~condsel.selection.method.policies.routing.RoutingPolicy`)
runs the right one. ``benchmarks/specialist_pool.py`` and the tests measure
that gap.
"""

from __future__ import annotations

import numpy as np

from condsel.selection.data.table import PredictionTable

SPECIALIST_COSTS = {"generalist_small": 10.0, "specialist_a": 20.0, "specialist_b": 20.0, "generalist_large": 80.0}


def specialist_pool(n: int = 4000, classes: int = 20, seed: int = 0) -> PredictionTable:
    """``n`` videos of ``classes`` classes (even) scored by the four members of :data:`SPECIALIST_COSTS`.

    Over standard normal noise, a member's logit for the true class is
    raised by its margin: the small generalist 1.2, with +2.0 on every class
    of the true half; the large one 3.2. A specialist adds 4.0 to the true
    class on its half and, on the other half, to a random class of its own
    half: it is as sure there as where it is right, so its confidence does
    not say when to run the other one.
    """
    if classes < 4 or classes % 2:
        raise ValueError(f"a specialist pool needs an even number of classes >= 4, got {classes}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    half = classes // 2
    first_half = labels < half
    rows = np.arange(n)

    def scores(margin: float, same_half: float = 0.0) -> np.ndarray:
        logits = rng.normal(size=(n, classes)).astype(np.float32)
        if same_half:
            in_half = (np.arange(classes)[None, :] < half) == first_half[:, None]
            logits += same_half * in_half
        logits[rows, labels] += margin
        return logits

    def specialist(strong_first: bool) -> np.ndarray:
        """Sure of the true class on its half; elsewhere sure of a wrong class of its own half (it knows no other)."""
        logits = rng.normal(size=(n, classes)).astype(np.float32)
        own = first_half == strong_first
        decoy = rng.integers(0, half, n) + (0 if strong_first else half)
        logits[rows, np.where(own, labels, decoy)] += 4.0
        return logits

    logits = {
        "generalist_small": scores(1.2, same_half=2.0),
        "specialist_a": specialist(True),
        "specialist_b": specialist(False),
        "generalist_large": scores(3.2),
    }
    names = np.array([f"gen_{i:06d}" for i in range(n)])
    return PredictionTable(names, labels, logits, gflops=dict(SPECIALIST_COSTS))
