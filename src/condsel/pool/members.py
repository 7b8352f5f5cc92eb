"""What a pool member is (a network, and how it reads a video) and the default synthetic pool."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from condsel.models.costs import count_gflops
from condsel.pool.models import build_model
from condsel.video.sampling import ClipSpec


@dataclass(frozen=True)
class PoolMember:
    name: str
    arch: dict
    clip: ClipSpec

    def build(self, num_classes: int) -> nn.Module:
        return build_model(self.arch, num_classes)

    def gflops_per_video(self, model: nn.Module) -> float:
        """Counted cost of one view times the number of test views (clips x crops)."""
        view = torch.zeros(1, 3, self.clip.num_frames, self.clip.size, self.clip.size)
        return count_gflops(model, view) * self.clip.views

    def to_dict(self) -> dict:
        return {"name": self.name, "arch": self.arch, "clip": self.clip.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> PoolMember:
        return cls(name=d["name"], arch=dict(d["arch"]), clip=ClipSpec.from_dict(d["clip"]))


# Rising cost, rising ability. frame2d sees 4 frames at 40 px and ignores their
# order; conv3d_s sees 8 frames at 40 px; conv3d_l sees 12 consecutive frames at
# 48 px and is tested on 3 clips x 3 crops, so its cost dominates decoding.
DEFAULT_POOL: tuple[PoolMember, ...] = (
    PoolMember("frame2d", {"kind": "frame2d", "widths": [16, 32, 64, 64]}, ClipSpec(num_frames=4, stride=4, size=40)),
    PoolMember(
        "conv3d_s",
        {"kind": "conv3d", "widths": [16, 32, 64], "strides": [[1, 2, 2], [2, 2, 2], [1, 1, 1]]},
        ClipSpec(num_frames=8, stride=2, size=40),
    ),
    PoolMember(
        "conv3d_l",
        {"kind": "conv3d", "widths": [32, 64, 128, 128], "strides": [[1, 2, 2], [2, 2, 2], [1, 2, 2], [1, 1, 1]]},
        ClipSpec(num_frames=12, stride=1, size=48, clips=3, crops=3),
    ),
)


def decode_short_side(members) -> int:
    """Decode at the largest size any member reads, so no member upsamples."""
    return max(m.clip.size for m in members)
