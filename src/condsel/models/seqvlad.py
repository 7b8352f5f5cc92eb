"""SeqVLAD (Xu et al., IEEE TIP 2018): BN-Inception frame maps aggregated by a recurrent soft-VLAD.

Defined to count the cost of the published SeqVLAD UCF101 scores
(youjiangxu/seqvlad-pytorch, ``--timesteps 25 --num_centers 64 --redu_dim
512``): every frame runs the BN-Inception trunk up to ``inception_5b``
(1024 x 7 x 7 at 224^2); a 1x1 convolution reduces it to 512 channels; a
convolutional GRU with 3x3 recurrent kernels computes soft assignments of each
position to 64 centres, frame after frame; the residuals to the centres are
summed over positions and frames (a 64 x 512 VLAD, intra- and L2-normalised)
and one linear layer classifies it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from condsel.models.bninception import FEATURE_DIM, BNInception


class SeqVLADAggregation(nn.Module):
    """Recurrent soft-assignment VLAD over a (B, T, C, H, W) sequence of feature maps."""

    def __init__(self, in_channels: int = FEATURE_DIM, reduced: int = 512, centers: int = 64):
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, reduced, 1)
        self.assign_input = nn.Conv2d(reduced, centers, 1)  # shared by the update, reset and candidate gates
        self.update = nn.Conv2d(centers, centers, 3, padding=1, bias=False)
        self.reset = nn.Conv2d(centers, centers, 3, padding=1, bias=False)
        self.candidate = nn.Conv2d(centers, centers, 3, padding=1, bias=False)
        self.centers = nn.Parameter(torch.zeros(centers, reduced))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = maps.shape
        x = self.reduce(maps.reshape(b * t, c, h, w))
        drive = self.assign_input(x).reshape(b, t, -1, h, w)
        state = torch.zeros_like(drive[:, 0])
        steps = []
        for i in range(t):
            z = torch.sigmoid(drive[:, i] + self.update(state))
            r = torch.sigmoid(drive[:, i] + self.reset(state))
            state = (1 - z) * torch.tanh(drive[:, i] + self.candidate(r * state)) + z * state
            steps.append(state)
        assign = torch.softmax(torch.stack(steps, 1).flatten(3), dim=2)  # (B, T, K, HW): over centres
        features = x.reshape(b, t, -1, h * w).transpose(2, 3)  # (B, T, HW, D)
        vlad = (assign @ features - assign.sum(-1, keepdim=True) * self.centers).sum(1)  # (B, K, D)
        return F.normalize(F.normalize(vlad, dim=2).flatten(1), dim=1)


class SeqVLAD(nn.Module):
    """BN-Inception + :class:`SeqVLADAggregation` + a linear classifier, on a (B, C, T, H, W) clip."""

    def __init__(self, num_classes: int = 101, in_channels: int = 3, reduced: int = 512, centers: int = 64):
        super().__init__()
        self.base_model = BNInception(num_classes=1, in_channels=in_channels)
        del self.base_model.fc  # replaced by the VLAD classifier
        self.aggregation = SeqVLADAggregation(FEATURE_DIM, reduced, centers)
        self.fc = nn.Linear(reduced * centers, num_classes)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = clip.shape
        maps = self.base_model.frame_maps(clip.transpose(1, 2).reshape(b * t, c, h, w))
        return self.fc(self.aggregation(maps.reshape(b, t, *maps.shape[1:])))
