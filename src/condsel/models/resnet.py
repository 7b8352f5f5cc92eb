"""ResNet-18 / ResNet-152 (He et al., CVPR 2016) in torchvision's layout, per frame.

Module names match ``torchvision.models.resnet`` (``conv1.weight``,
``layer1.0.conv1.weight``, ``layer2.0.downsample.0.weight``, ``fc.weight``), so
torchvision's ImageNet checkpoints and models fine-tuned from them load as
they are. As in torchvision (ResNet v1.5), a bottleneck strides in its 3x3
convolution. Applied to every frame of a clip; logits are averaged over frames.
"""

from __future__ import annotations

import torch
from torch import nn

from condsel.models.layers import FrameModel

# depth -> (block kind, blocks per stage)
DEPTHS = {18: ("basic", (2, 2, 2, 2)), 152: ("bottleneck", (3, 8, 36, 3))}


def _downsample(dim_in: int, dim_out: int, stride: int) -> nn.Module | None:
    if stride == 1 and dim_in == dim_out:
        return None
    return nn.Sequential(nn.Conv2d(dim_in, dim_out, 1, stride, bias=False), nn.BatchNorm2d(dim_out))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, dim_in: int, width: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(dim_in, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(dim_in, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + shortcut)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, dim_in: int, width: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(dim_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(dim_in, width * 4, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + shortcut)


class ResNet(FrameModel):
    """A torchvision-layout ResNet run on each frame of a (B, C, T, H, W) clip."""

    def __init__(self, depth: int, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"ResNet depth must be one of {sorted(DEPTHS)}, got {depth}")
        kind, stage_blocks = DEPTHS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        dim_in = 64
        for index, count in enumerate(stage_blocks):
            width = 64 * 2**index
            blocks = []
            for i in range(count):
                blocks.append(block(dim_in, width, stride=2 if i == 0 and index > 0 else 1))
                dim_in = width * block.expansion
            self.add_module(f"layer{index + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(dim_in, num_classes)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)
