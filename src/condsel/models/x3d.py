"""X3D (Feichtenhofer, CVPR 2020) in plain torch, PyTorchVideo's module layout.

Module names follow PyTorchVideo's ``create_x3d`` so that its hub checkpoints
(``X3D_XS.pyth`` ...) load as they are: ``blocks.0`` is the stem, ``blocks.1``
to ``blocks.4`` the four residual stages, ``blocks.5`` the head. PySlowFast's
checkpoints use other names; ``checkpoints.pyslowfast_x3d_to_pytorchvideo``
maps them.

Two quirks of that layout are kept on purpose:
- In the stem, ``conv.conv_t`` is the *spatial* 1x3x3 convolution and
  ``conv.conv_xy`` the depthwise *temporal* 5x1x1 one (PyTorchVideo's names).
- PyTorchVideo's first stage has a strided shortcut convolution without a
  BatchNorm after it (pytorchvideo issue #95); PySlowFast has one. Pass
  ``stage1_shortcut_norm=True`` to build the PySlowFast variant.

Expansion factors (X3D paper, Table 3 / PySlowFast configs): width 2.0,
bottleneck 2.25, depth 2.2 for XS/S/M and 5.0 for L; stage base depths
[1, 2, 5, 3]; SE ratio 1/16 on every other block; Swish after the depthwise
3x3x3 convolution.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from condsel.models.layers import window_avg_pool

STAGE_BASE_DEPTHS = (1, 2, 5, 3)
STEM_BASE_WIDTH = 12
SE_RATIO = 0.0625
HEAD_WIDTH = 2048


def round_width(width: float, multiplier: float, min_width: int = 8, divisor: int = 8) -> int:
    """Scale a channel count and round it to a multiple of ``divisor`` (X3D's rule)."""
    scaled = width * multiplier
    rounded = max(min_width, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, multiplier: float) -> int:
    return int(math.ceil(multiplier * repeats))


class Swish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class SqueezeExcitation(nn.Module):
    """Channel gating from the clip-wide mean (fvcore layout: ``block.0`` / ``block.2``)."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv3d(channels, reduced, 1, bias=True),
            nn.ReLU(),
            nn.Conv3d(reduced, channels, 1, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.block(x.mean(dim=(2, 3, 4), keepdim=True))


class SpatialThenTemporalConv(nn.Module):
    """Stem convolution: 1x3x3 over space, then a depthwise 5x1x1 over time."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv_t = nn.Conv3d(in_channels, out_channels, (1, 3, 3), (1, 2, 2), (0, 1, 1), bias=False)
        self.conv_xy = nn.Conv3d(
            out_channels, out_channels, (5, 1, 1), padding=(2, 0, 0), groups=out_channels, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_xy(self.conv_t(x))


class Stem(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = SpatialThenTemporalConv(in_channels, out_channels)
        self.norm = nn.BatchNorm3d(out_channels)
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv(x)))


class Bottleneck(nn.Module):
    """1x1x1 -> depthwise 3x3x3 (strided, SE, Swish) -> 1x1x1."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, stride: int, use_se: bool):
        super().__init__()
        self.conv_a = nn.Conv3d(dim_in, dim_inner, 1, bias=False)
        self.norm_a = nn.BatchNorm3d(dim_inner)
        self.act_a = nn.ReLU()
        self.conv_b = nn.Conv3d(
            dim_inner, dim_inner, 3, (1, stride, stride), 1, groups=dim_inner, bias=False
        )
        se = SqueezeExcitation(dim_inner, round_width(dim_inner, SE_RATIO)) if use_se else nn.Identity()
        self.norm_b = nn.Sequential(nn.BatchNorm3d(dim_inner), se)
        self.act_b = Swish()
        self.conv_c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.norm_c = nn.BatchNorm3d(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act_a(self.norm_a(self.conv_a(x)))
        x = self.act_b(self.norm_b(self.conv_b(x)))
        return self.norm_c(self.conv_c(x))


class ResBlock(nn.Module):
    """Residual block; a strided or widening block projects its shortcut.

    PyTorchVideo normalises the projected shortcut only when it widens;
    ``strided_shortcut_norm`` adds PySlowFast's BatchNorm on a strided one too.
    """

    def __init__(self, dim_in, dim_inner, dim_out, stride, use_se, strided_shortcut_norm):
        super().__init__()
        project = dim_in != dim_out or stride > 1
        self.branch1_conv = (
            nn.Conv3d(dim_in, dim_out, 1, (1, stride, stride), bias=False) if project else None
        )
        norm = dim_in != dim_out or (project and strided_shortcut_norm)
        self.branch1_norm = nn.BatchNorm3d(dim_out) if norm else None
        self.branch2 = Bottleneck(dim_in, dim_inner, dim_out, stride, use_se)
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.branch1_conv is None else self.branch1_conv(x)
        if self.branch1_norm is not None:
            shortcut = self.branch1_norm(shortcut)
        return self.activation(shortcut + self.branch2(x))


class ResStage(nn.Module):
    def __init__(self, depth, dim_in, dim_inner, dim_out, strided_shortcut_norm):
        super().__init__()
        self.res_blocks = nn.ModuleList(
            ResBlock(
                dim_in if i == 0 else dim_out,
                dim_inner,
                dim_out,
                stride=2 if i == 0 else 1,
                use_se=i % 2 == 0,
                strided_shortcut_norm=strided_shortcut_norm,
            )
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.res_blocks:
            x = block(x)
        return x


class ProjectedPool(nn.Module):
    """1x1x1 conv + BN + ReLU, window average, 1x1x1 conv to 2048 + ReLU."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, window: tuple[int, int, int]):
        super().__init__()
        self.window = window
        self.pre_conv = nn.Conv3d(dim_in, dim_inner, 1, bias=False)
        self.pre_norm = nn.BatchNorm3d(dim_inner)
        self.pre_act = nn.ReLU()
        self.post_conv = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.post_act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = window_avg_pool(self.pre_act(self.pre_norm(self.pre_conv(x))), self.window)
        return self.post_act(self.post_conv(x))


class Head(nn.Module):
    def __init__(self, dim_in, dim_inner, num_classes, window, dropout):
        super().__init__()
        self.pool = ProjectedPool(dim_in, dim_inner, HEAD_WIDTH, window)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(HEAD_WIDTH, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The projection is linear, so averaging features over pooling
        # positions equals averaging the per-position logits.
        return self.proj(self.dropout(self.features(x)))


class X3D(nn.Module):
    """An X3D network; input (B, C, T, H, W), output class logits (B, K)."""

    def __init__(
        self,
        *,
        depth_factor: float,
        frames: int,
        crop: int,
        num_classes: int = 400,
        in_channels: int = 3,
        width_factor: float = 2.0,
        bottleneck_factor: float = 2.25,
        dropout: float = 0.5,
        stage1_shortcut_norm: bool = False,
    ):
        super().__init__()
        stem_width = round_width(STEM_BASE_WIDTH, width_factor)
        blocks: list[nn.Module] = [Stem(in_channels, stem_width)]
        dim_in, base = stem_width, STEM_BASE_WIDTH
        for index, base_depth in enumerate(STAGE_BASE_DEPTHS):
            dim_out = round_width(base, width_factor)
            dim_inner = int(bottleneck_factor * dim_out)
            blocks.append(
                ResStage(
                    round_repeats(base_depth, depth_factor),
                    dim_in,
                    dim_inner,
                    dim_out,
                    strided_shortcut_norm=stage1_shortcut_norm,
                )
            )
            dim_in, base = dim_out, round_width(base, 2.0)
        # The head's pooling window is the feature map of the default input
        # (total spatial stride 32, no temporal stride).
        window = (frames, math.ceil(crop / 32), math.ceil(crop / 32))
        blocks.append(Head(dim_in, dim_inner, num_classes, window, dropout))
        self.blocks = nn.ModuleList(blocks)

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        # PyTorch's CPU kernels for depthwise Conv3d are several times faster
        # on channels-last tensors; the values are the same.
        x = x.contiguous(memory_format=torch.channels_last_3d)
        for block in self.blocks[:-1]:
            x = block(x)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The 2048-d pooled embedding the classifier reads."""
        return self.blocks[-1].features(self._trunk(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks[-1](self._trunk(x))
