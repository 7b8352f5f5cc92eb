"""Per-video costs of the five DMC-Net / CoViAR models behind the UCF101 scores.

Derived from the architectures in facebookresearch/dmc-net (``code/dmcnet/
model.py`` and the ``exp_my/*/run.sh`` test commands): every model is a
TSN-style 2D network applied to 25 segments x 1 centre crop at 224x224.

- ``mv``: ResNet-18 whose first conv takes the 2-channel motion vectors;
- ``residual``: ResNet-18 on 3-channel residuals;
- ``flow``: ResNet-18 on 2-channel TV-L1 flow (the flow itself is not counted);
- ``gen_flow``: DMC-Net, the "DenseNetTiny" generator (dense 3x3 convs of
  8, 8, 6, 4, 2 channels plus a 2-channel flow head, on the 5-channel mv +
  residual at 224x224) followed by the flow ResNet-18;
- ``iframe``: ResNet-152 on the decoded I-frame.

Left out, as the field does: compressed-domain decoding (motion vectors,
residuals, I-frames), TV-L1 optical flow, normalisation and element-wise ops.
"""

from __future__ import annotations

import torch
from torch import nn

from condsel.models.costs import count_gflops
from condsel.models import get_spec

SEGMENTS = 25
CROP = 224
NUM_CLASSES = 101


class DenseTinyFlowGenerator(nn.Module):
    """Shape of DMC-Net's DenseNetTiny generator: each conv sees the input and all earlier outputs."""

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


def _frame_cost(network: nn.Module, channels: int) -> float:
    return count_gflops(network, torch.empty(1, channels, CROP, CROP, device="meta"))


def _resnet_frame(depth_name: str, channels: int) -> float:
    spec = get_spec(depth_name)
    with torch.device("meta"):
        net = spec.build(num_classes=NUM_CLASSES, in_channels=channels)
    # the zoo's 2D models take (B, C, T, H, W); one frame is T = 1
    return count_gflops(net, torch.empty(1, channels, 1, CROP, CROP, device="meta"))


def ucf101_costs() -> tuple[dict[str, float], list[str]]:
    """GFLOPs per video for each model, and the lines of the derivation."""
    with torch.device("meta"):
        generator = DenseTinyFlowGenerator()
    per_frame = {
        "resnet18, 2-channel input": _resnet_frame("resnet18", 2),
        "resnet18, 3-channel input": _resnet_frame("resnet18", 3),
        "resnet152, 3-channel input": _resnet_frame("resnet152", 3),
        "DMC-Net DenseNetTiny generator, 5 -> 2 channels": _frame_cost(generator, 5),
    }
    r18_2, r18_3, r152, gen = per_frame.values()
    per_segment = {"mv": r18_2, "residual": r18_3, "flow": r18_2, "gen_flow": gen + r18_2, "iframe": r152}
    costs = {name: SEGMENTS * g for name, g in per_segment.items()}
    lines = [f"per 224x224 frame: {name} = {g:.4f} GFLOPs" for name, g in per_frame.items()]
    lines += [f"{name}: {per_segment[name]:.4f} GFLOPs/segment x {SEGMENTS} segments = {costs[name]:.2f} GFLOPs/video" for name in costs]
    lines.append("not counted: compressed-domain decoding, TV-L1 flow for 'flow', element-wise ops")
    return costs, lines
