"""Small building blocks shared by the model families."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def window_avg_pool(x: torch.Tensor, window: tuple[int, int, int]) -> torch.Tensor:
    """Average over sliding ``window`` (T, H, W) cells with stride 1.

    The X3D and I3D heads pool with a fixed window sized for the training
    input. At that input the window covers the whole map (a global average);
    on larger test inputs the released code slides it, giving several
    positions that are averaged after the classifier. A window larger than the
    map is clipped to it, so shorter or smaller inputs still run.
    """
    kernel = tuple(min(w, s) for w, s in zip(window, x.shape[-3:]))
    return F.avg_pool3d(x, kernel, stride=1)


class FrameModel(nn.Module):
    """A 2D image network applied to every frame of a (B, C, T, H, W) clip.

    Subclasses implement ``frame_features`` (N, C, H, W) -> (N, D) and name
    ``classifier_layer``; both outputs are averaged over the T frames, so the
    cost of a clip is the cost of a frame times T.
    """

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _per_frame(self, x: torch.Tensor, fn) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"expected a (B, C, T, H, W) clip, got shape {tuple(x.shape)}")
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        return fn(frames).reshape(b, t, -1).mean(dim=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding per clip (mean over frames), the classifier's input."""
        return self._per_frame(x, self.frame_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits per clip: the mean of the per-frame logits."""
        return self._per_frame(x, lambda f: self.classify(self.frame_features(f)))
