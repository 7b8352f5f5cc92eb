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
from condsel.errors import names_the_file

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


@names_the_file
def load_costs_toml(path: str | Path) -> dict[str, float]:
    """Read a ``[gflops]`` table (``name = value``) of per-video costs."""
    path = Path(path)
    doc = read_toml(path, "costs file")
    table = doc.get("gflops")
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{path}: expected a non-empty [gflops] table of name = value")
    costs = {}
    for name, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise ValueError(f"{path}: [gflops] {name} = {value!r} is not a positive number")
        costs[name] = float(value)
    return costs
