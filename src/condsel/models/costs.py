"""Compute cost of a model, counted from its real graph.

Convention (stated everywhere a number is printed): one multiply-add = one
FLOP, so "GFLOPs" here are GMACs, as in the X3D paper and fvcore.
``torch.utils.flop_counter`` counts a multiply-add as two FLOPs, hence the
halving below. Only the operators it knows (convolutions, matrix products,
attention) are counted; element-wise ops, normalisation and pooling are left
out, which is also what the published figures for these families count.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from condsel._io import read_toml
from condsel.errors import CondselError, names_the_file

FLOP_CONVENTION = "GFLOPs = 1e9 multiply-adds (one multiply-add counted as one FLOP, as in X3D/fvcore)"


def count_gflops(model: torch.nn.Module, *inputs: torch.Tensor) -> float:
    """Multiply-adds of one forward pass, in units of 1e9 (GMACs)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*inputs)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 2.0 / 1e9


COST_UNITS = ("gflops", "ms")
PROFILE_TABLE = "profile"  # what ``condsel profile`` measured under; not a cost table
UNIT_LABELS = {"gflops": "GFLOPs", "ms": "ms"}


class Costs(dict):
    """Per-video cost of each member (``name -> value``), in ``unit``: ``"gflops"`` (counted) or ``"ms"`` (profiled).

    A dict, so code that only reads values keeps working; the unit travels with
    the values, so whatever prints or stores them can name it.
    """

    def __init__(self, values, unit: str = "gflops"):
        if unit not in COST_UNITS:
            raise CondselError(f"unknown cost unit {unit!r}; expected one of {list(COST_UNITS)}")
        super().__init__(values)
        self.unit = unit

    @property
    def label(self) -> str:
        """The unit as printed: GFLOPs or ms."""
        return UNIT_LABELS[self.unit]


@names_the_file
def load_costs_toml(path: str | Path) -> Costs:
    """Read a costs file: exactly one table, ``[gflops]`` or ``[ms]``, of ``name = value`` per video.

    A ``[profile]`` table (written by ``condsel profile``) is metadata. Anything
    else (neither cost table, both, or another table such as ``[seconds]``)
    is refused, naming the file, rather than guessed at: a wrong unit would
    silently skew every budget.
    """
    path = Path(path)
    doc = read_toml(path, "costs file")
    tables = {k for k, v in doc.items() if isinstance(v, dict)}
    unknown = sorted(tables - set(COST_UNITS) - {PROFILE_TABLE})
    units = [u for u in COST_UNITS if u in tables]
    if unknown:
        raise CondselError(f"{path}: unknown cost unit table(s) {[f'[{u}]' for u in unknown]}; expected exactly one of [gflops] or [ms]")
    if len(units) != 1:
        found = "both [gflops] and [ms]" if units else "neither [gflops] nor [ms]"
        raise CondselError(f"{path}: expected exactly one of [gflops] or [ms] (name = cost per video), found {found}")
    unit = units[0]
    table = doc[unit]
    if not table:
        raise CondselError(f"{path}: the [{unit}] table is empty; expected name = cost per video")
    costs = {}
    for name, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise CondselError(f"{path}: [{unit}] {name} = {value!r} is not a positive number")
        costs[name] = float(value)
    return Costs(costs, unit)
