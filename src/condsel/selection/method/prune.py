"""Pool pruning and cascade order candidates, decided on training samples only.

A member is worth keeping when it is part of some Pareto-optimal static
choice (a single member or a fused subset of up to three) on the training
samples: a member that is never on that front is dominated alone and adds
nothing in any small fusion, so no cascade or selector should spend on it.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np

from condsel.selection.method.static import static_choices
from condsel.selection.data.table import PredictionTable

log = logging.getLogger(__name__)


def prune_members(table: PredictionTable, max_members: int = 4, max_size: int = 3) -> tuple[list[str], dict[str, str]]:
    """Members kept (ascending cost) and, for each dropped one, why.

    Members on the training static front are ranked by how many front points
    use them (ties to the cheaper); the first ``max_members`` are kept.
    """
    choices = static_choices(table, max_size, exact=False)
    values = choices.values
    best_before = np.r_[-np.inf, np.maximum.accumulate(values)[:-1]]
    front = [choices.members[i] for i in np.flatnonzero(values > best_before)]
    uses = {m: sum(m in c for c in front) for m in table.models}
    ranked = sorted((m for m in table.models if uses[m]), key=lambda m: (-uses[m], table.gflops[m], m))
    kept = ranked[:max_members]
    dropped = {}
    for m in table.models:
        if not uses[m]:
            dropped[m] = f"never in a Pareto-optimal single or fused subset of <= {max_size} on the training samples"
        elif m not in kept:
            dropped[m] = f"on the static front ({uses[m]} points) but only the {max_members} most used members are searched"
    for m, why in dropped.items():
        log.debug("pruned %s: %s", m, why)
    return sorted(kept, key=lambda m: (table.gflops[m], m)), dropped


def candidate_orders(members: list[str]) -> list[tuple[str, ...]]:
    """Every ordering of every non-empty subset: the cascades an order search compares."""
    return [order for size in range(1, len(members) + 1) for subset in itertools.combinations(members, size) for order in itertools.permutations(subset)]
