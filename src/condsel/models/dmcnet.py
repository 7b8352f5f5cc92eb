"""DMC-Net's flow generator (Shou et al., CVPR 2019), defined to count the cost of the ``gen_flow`` scores."""

from __future__ import annotations

import torch
from torch import nn


class DenseTinyFlowGenerator(nn.Module):
    """Shape of DMC-Net's DenseNetTiny generator: each conv sees the input and all earlier outputs.

    From facebookresearch/dmc-net ``code/dmcnet/model.py``: dense 3x3 convs of
    8, 8, 6, 4, 2 channels plus a 2-channel flow head, on the 5-channel
    motion vectors + residual.
    """

    widths = (8, 8, 6, 4, 2)

    def __init__(self, in_channels: int = 5):
        super().__init__()
        self.convs = nn.ModuleList()
        seen = in_channels
        for width in self.widths:
            self.convs.append(nn.Conv2d(seen, width, 3, padding=1))
            seen += width
        self.head = nn.Conv2d(seen, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = torch.cat([nn.functional.leaky_relu(conv(x), 0.1), x], dim=1)
        return self.head(x)
