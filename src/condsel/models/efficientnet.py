"""EfficientNet-B0 (Tan & Le, ICML 2019) in torchvision's layout, per frame.

Module names match ``torchvision.models.efficientnet_b0`` (``features.0.0.weight``,
``features.1.0.block.1.fc1.weight``, ``classifier.1.weight``), so its ImageNet
checkpoint and models fine-tuned from it load as they are. Inference only:
stochastic depth, a training-time regulariser, is left out (it is the identity
in eval mode). Applied to every frame of a clip; logits are averaged.
"""

from __future__ import annotations

import torch
from torch import nn

from condsel.models.layers import FrameModel

# EfficientNet-B0 stages (paper Table 1): expand ratio, kernel, stride,
# input channels, output channels, blocks.
B0_STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
HEAD_CHANNELS = 1280


def conv_bn_act(dim_in, dim_out, kernel, stride=1, groups=1, activation=True) -> nn.Sequential:
    layers = [
        nn.Conv2d(dim_in, dim_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(dim_out),
    ]
    if activation:
        layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(nn.functional.silu(self.fc1(x.mean(dim=(2, 3), keepdim=True))))
        return x * torch.sigmoid(scale)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, SE, 1x1 project."""

    def __init__(self, expand: int, kernel: int, stride: int, dim_in: int, dim_out: int):
        super().__init__()
        hidden = dim_in * expand
        layers: list[nn.Module] = []
        if hidden != dim_in:
            layers.append(conv_bn_act(dim_in, hidden, 1))
        layers.append(conv_bn_act(hidden, hidden, kernel, stride, groups=hidden))
        layers.append(SqueezeExcitation(hidden, max(1, dim_in // 4)))
        layers.append(conv_bn_act(hidden, dim_out, 1, activation=False))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and dim_in == dim_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.residual else out


class EfficientNetB0(FrameModel):
    """A torchvision-layout EfficientNet-B0 run on each frame of a (B, C, T, H, W) clip."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = [conv_bn_act(in_channels, B0_STAGES[0][3], 3, 2)]
        for expand, kernel, stride, dim_in, dim_out, count in B0_STAGES:
            layers.append(
                nn.Sequential(
                    *(
                        MBConv(expand, kernel, stride if i == 0 else 1, dim_in if i == 0 else dim_out, dim_out)
                        for i in range(count)
                    )
                )
            )
        layers.append(conv_bn_act(B0_STAGES[-1][4], HEAD_CHANNELS, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout, inplace=True), nn.Linear(HEAD_CHANNELS, num_classes))

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.avgpool(self.features(x)).flatten(1)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)
