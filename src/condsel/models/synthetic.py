"""The synthetic benchmark's networks: small, CPU-trainable, of rising cost.

Two families, registered in the zoo (``frame2d``, ``conv3d_s``, ``conv3d_l``)
with JSON-able build options (widths, strides) that a pool config may
override, so a run directory rebuilds them without pickles. Both expose ``forward_features`` (pooled
embedding per clip) and ``classify`` (embedding -> logits), so inference gets
features and logits from one pass:
- ``frame2d``: a 2D conv net on each frame, features averaged over frames. It
  sees appearance only and cannot tell a clip from its time reversal.
- ``conv3d``: plain 3D conv stages (conv-BN-ReLU, full 3x3x3 kernels), the
  C3D/I3D idea without the Inception blocks. Dense 3D convolutions keep wall
  time proportional to FLOPs on a CPU, which depthwise X3D blocks would not.
"""

from __future__ import annotations

import torch
from torch import nn

from condsel.models.layers import FrameModel


def _conv_bn_relu(conv: nn.Module, width: int, bn) -> list[nn.Module]:
    return [conv, bn(width), nn.ReLU(inplace=True)]


class FrameAverageNet(FrameModel):
    """2D conv stages (stride 2 each) on every frame, global pooled, one linear classifier."""

    def __init__(self, num_classes: int, widths: list[int], in_channels: int = 3):
        super().__init__()
        layers, width = [], in_channels
        for out in widths:
            layers += _conv_bn_relu(nn.Conv2d(width, out, 3, stride=2, padding=1, bias=False), out, nn.BatchNorm2d)
            width = out
        self.trunk = nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(width, num_classes)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)


class Conv3DNet(nn.Module):
    """A (1,3,3) stem, then 3x3x3 stages with the given widths and (T, H, W) strides."""

    def __init__(
        self, num_classes: int, widths: list[int], strides: list[list[int]], dropout: float = 0.2, in_channels: int = 3
    ):
        super().__init__()
        if len(widths) != len(strides):
            raise ValueError(f"conv3d: {len(widths)} widths but {len(strides)} strides")
        stem = widths[0]
        layers = _conv_bn_relu(nn.Conv3d(in_channels, stem, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False), stem, nn.BatchNorm3d)
        width = stem
        for out, stride in zip(widths, strides):
            layers += _conv_bn_relu(nn.Conv3d(width, out, 3, stride=tuple(stride), padding=1, bias=False), out, nn.BatchNorm3d)
            width = out
        self.trunk = nn.Sequential(*layers, nn.AdaptiveMaxPool3d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.forward_features(x))
