"""The bundled UCF101 split-1 table with its derived costs: the default input of the analyses."""

from __future__ import annotations

from condsel.datasets.ucf101 import load_ucf101_split1
from condsel.selection.table import PredictionTable
from condsel.datasets.ucf101_costs import ucf101_costs

UCF101_BACKBONE = "mv"  # the cheapest real input: motion vectors straight from the compressed stream
UCF101_DATA = ("UCF101 split 1: published per-video scores of five real models (DMC-Net/CoViAR), "
               "costs derived from their architectures")


def ucf101_table() -> PredictionTable:
    return load_ucf101_split1().with_costs(ucf101_costs()[0])
