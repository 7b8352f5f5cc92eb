"""BN-Inception (Ioffe & Szegedy, ICML 2015), the TSN / SeqVLAD backbone, per frame.

Module names are the layer ids of the Caffe model that TSN released and that
tsn-pytorch, Cadene's ``pretrainedmodels.bninception`` and SeqVLAD load
(``conv1_7x7_s2``, ``conv1_7x7_s2_bn``, ``inception_3a_double_3x3_1``,
``inception_4e_3x3_bn``, ...), kept flat as in those ports so their
``state_dict`` keys load as they are; the classifier is ``fc``.
:func:`adapt_bninception_state_dict` strips TSN's ``base_model.`` prefix and
renames ``new_fc`` / ``last_linear`` to ``fc``, and
squeezes the (1, C) BatchNorm tensors of tsn-pytorch's ImageNet file. Convolutions carry biases
(the Caffe layout); pooling rounds up (Caffe's ``ceil_mode``).

A TSN flow stream takes 5 stacked (x, y) flow pairs, i.e. 10 input channels;
only ``conv1_7x7_s2`` changes with the channel count.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from condsel.models.layers import FrameModel

# name: (input channels, 1x1, 3x3 reduce, 3x3, double-3x3 reduce, double 3x3, pool kind, pool projection, stride)
# from the BN-Inception table (Ioffe & Szegedy 2015, Fig. 5) as realised in TSN's released model
INCEPTION_BLOCKS = (
    ("3a", 192, 64, 64, 64, 64, 96, "avg", 32, 1),
    ("3b", 256, 64, 64, 96, 64, 96, "avg", 64, 1),
    ("3c", 320, 0, 128, 160, 64, 96, "max", 0, 2),
    ("4a", 576, 224, 64, 96, 96, 128, "avg", 128, 1),
    ("4b", 576, 192, 96, 128, 96, 128, "avg", 128, 1),
    ("4c", 576, 160, 128, 160, 128, 160, "avg", 128, 1),
    ("4d", 608, 96, 128, 192, 160, 192, "avg", 128, 1),
    ("4e", 608, 0, 128, 192, 192, 256, "max", 0, 2),
    ("5a", 1056, 352, 192, 320, 160, 224, "avg", 128, 1),
    ("5b", 1024, 352, 192, 320, 192, 224, "max", 128, 1),
)
FEATURE_DIM = 1024


class BNInception(FrameModel):
    """BN-Inception run on each frame (or flow stack) of a (B, C, T, H, W) clip."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        self._conv_bn("conv1_7x7_s2", in_channels, 64, 7, stride=2, padding=3)
        self._conv_bn("conv2_3x3_reduce", 64, 64, 1)
        self._conv_bn("conv2_3x3", 64, 192, 3, padding=1)
        for tag, dim_in, c1, r3, c3, rd, d3, _, proj, stride in INCEPTION_BLOCKS:
            prefix = f"inception_{tag}_"
            if c1:
                self._conv_bn(prefix + "1x1", dim_in, c1, 1)
            self._conv_bn(prefix + "3x3_reduce", dim_in, r3, 1)
            self._conv_bn(prefix + "3x3", r3, c3, 3, stride=stride, padding=1)
            self._conv_bn(prefix + "double_3x3_reduce", dim_in, rd, 1)
            self._conv_bn(prefix + "double_3x3_1", rd, d3, 3, padding=1)
            self._conv_bn(prefix + "double_3x3_2", d3, d3, 3, stride=stride, padding=1)
            if proj:
                self._conv_bn(prefix + "pool_proj", dim_in, proj, 1)
        self.fc = nn.Linear(FEATURE_DIM, num_classes)

    def _conv_bn(self, name: str, dim_in: int, dim_out: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        self.add_module(name, nn.Conv2d(dim_in, dim_out, kernel, stride, padding))
        self.add_module(name + "_bn", nn.BatchNorm2d(dim_out))

    def _unit(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return F.relu(getattr(self, name + "_bn")(getattr(self, name)(x)))

    def _inception(self, block: tuple, x: torch.Tensor) -> torch.Tensor:
        tag, _, c1, _, _, _, _, pool, proj, stride = block
        p = f"inception_{tag}_"
        branches = [self._unit(p + "1x1", x)] if c1 else []
        branches.append(self._unit(p + "3x3", self._unit(p + "3x3_reduce", x)))
        double = self._unit(p + "double_3x3_reduce", x)
        branches.append(self._unit(p + "double_3x3_2", self._unit(p + "double_3x3_1", double)))
        if pool == "avg":
            pooled = F.avg_pool2d(x, 3, stride=1, padding=1, ceil_mode=True, count_include_pad=True)
        else:
            pooled = F.max_pool2d(x, 3, stride=stride, padding=0 if stride > 1 else 1, ceil_mode=True)
        branches.append(self._unit(p + "pool_proj", pooled) if proj else pooled)
        return torch.cat(branches, dim=1)

    def frame_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) frames -> (N, 1024, H/32, W/32) maps of ``inception_5b``, before the global pool."""
        x = F.max_pool2d(self._unit("conv1_7x7_s2", x), 3, stride=2, ceil_mode=True)
        x = self._unit("conv2_3x3", self._unit("conv2_3x3_reduce", x))
        x = F.max_pool2d(x, 3, stride=2, ceil_mode=True)
        for block in INCEPTION_BLOCKS:
            x = self._inception(block, x)
        return x

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.frame_maps(x).mean(dim=(2, 3))  # TSN's 7x7 global average pool at 224^2

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)


_RENAMES = ((r"^(module\.)?base_model\.", ""), (r"^(module\.)?(new_fc|last_linear)\.", "fc."))
# tsn-pytorch's ImageNet file (bn_inception-9f5701afb96c8044.pth, also used by TRN, TSM and ECO),
# converted from Caffe, stores these four of every BatchNorm as (1, C)
_BN_ROW = re.compile(r"_bn\.(weight|bias|running_mean|running_var)$")


def adapt_bninception_state_dict(state: dict) -> tuple[dict, dict]:
    """TSN (``base_model.*``, ``new_fc.*``) and Cadene (``last_linear.*``) keys -> the zoo's.

    BatchNorm tensors in the Caffe-converted (1, C) layout become (C,); no other
    tensor is reshaped, so a mis-shaped one still fails the strict load.
    """
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in _RENAMES:
            key = re.sub(pattern, replacement, key)
        if _BN_ROW.search(key) and value.dim() == 2 and value.shape[0] == 1:
            value = value.reshape(-1)
        renamed[key] = value
    return renamed, {}
