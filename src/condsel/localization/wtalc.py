"""W-TALC (Paul, Roy, Roy-Chowdhury, ECCV 2018): a weakly supervised localization head.

One head per stream turns per-clip features (T x D) into a class activation
sequence (CAS, T x C), trained from video-level labels only with

- the multiple-instance loss (MIL): per class, the mean of the top-k CAS values
  with k = ceil(T / 8), softmax cross-entropy against the L1-normalized labels;
- the co-activity similarity loss (CASL): for pairs of videos sharing a class,
  features pooled with attention = softmax over time of that class's CAS must
  be closer to each other (cosine distance) than to the other video's
  low-attention features, by a margin 0.5 (hinge), averaged over shared classes.

Defaults are the authors' published code, sujoyp/wtalc-pytorch: options.py
(lr 1e-4, batch 10, 3 similar pairs per batch, Lambda 0.5 weighting
Lambda * MIL + (1 - Lambda) * CASL, max sequence length 750, 100k iterations),
main.py (Adam, weight decay 5e-4), model.py (FC D->D + ReLU + dropout 0.7,
linear classifier, Xavier-uniform weights and zero biases), train.py (k, margin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn
from condsel._progress import progress_bar


@dataclass(frozen=True)
class WTALCConfig:
    lr: float = 1e-4
    weight_decay: float = 5e-4
    batch_size: int = 10
    num_similar: int = 3  # pairs of videos sharing a class in each batch
    mil_weight: float = 0.5  # W-TALC's Lambda: loss = Lambda * MIL + (1 - Lambda) * CASL
    max_seqlen: int = 750  # longer videos: a random window of this many clips per step
    dropout: float = 0.7
    iterations: int = 100_000
    margin: float = 0.5
    topk_divisor: int = 8


class WTALCHead(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.embed = nn.Linear(feature_dim, feature_dim)
        self.classifier = nn.Linear(feature_dim, num_classes)
        self.dropout = nn.Dropout(dropout)
        for layer in (self.embed, self.classifier):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D) -> embedding (B, T, D) and CAS (B, T, C)."""
        embedding = self.dropout(torch.relu(self.embed(features)))
        return embedding, self.classifier(embedding)


def topk_pool(cas: torch.Tensor, lengths: torch.Tensor, divisor: int = 8) -> torch.Tensor:
    """(B, T, C) -> (B, C): per class the mean of the k = ceil(T/8) largest CAS values of the valid clips."""
    steps = torch.arange(cas.shape[1], device=cas.device)
    valid = steps[None, :] < lengths[:, None]
    ranked = cas.masked_fill(~valid[..., None], float("-inf")).sort(dim=1, descending=True).values
    k = torch.clamp(torch.ceil(lengths.float() / divisor), min=1).long()
    keep = (steps[None, :] < k[:, None])[..., None]
    return torch.where(keep, ranked, torch.zeros_like(ranked)).sum(dim=1) / k[:, None]


def mil_loss(cas: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor, divisor: int = 8) -> torch.Tensor:
    targets = labels / labels.sum(dim=1, keepdim=True).clamp(min=1e-12)
    log_p = torch.log_softmax(topk_pool(cas, lengths, divisor), dim=1)
    return -(targets * log_p).sum(dim=1).mean()


def _cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(P, D, C) x (P, D, C) -> (P, C): 1 - cosine over D."""
    return 1 - (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1)).clamp(min=1e-12)


def co_activity_loss(
    embedding: torch.Tensor, cas: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor, margin: float = 0.5
) -> torch.Tensor:
    """CASL over consecutive pairs (0, 1), (2, 3), ... of the batch."""
    valid = (torch.arange(cas.shape[1])[None, :] < lengths[:, None])[..., None]  # (B, T, 1)
    attention = torch.softmax(cas.masked_fill(~valid, float("-inf")), dim=1)  # over time, per class
    rest = (1 - attention).masked_fill(~valid, 0.0) / (lengths[:, None, None] - 1).clamp(min=1)
    high = torch.einsum("btd,btc->bdc", embedding, attention)  # (B, D, C)
    low = torch.einsum("btd,btc->bdc", embedding, rest)
    h1, h2, l1, l2 = high[0::2], high[1::2], low[0::2], low[1::2]
    shared = labels[0::2] * labels[1::2]  # (P, C)
    d_pair = _cosine_distance(h1, h2)
    hinge = torch.relu(d_pair - _cosine_distance(h1, l2) + margin) + torch.relu(d_pair - _cosine_distance(h2, l1) + margin)
    return (0.5 * hinge * shared).sum() / shared.sum().clamp(min=1e-12)


class _BatchSampler:
    """W-TALC's batches: ``num_similar`` pairs of videos drawn from one random class each, then random videos."""

    def __init__(self, labels: np.ndarray, config: WTALCConfig, rng: np.random.Generator) -> None:
        self.by_class = [np.flatnonzero(labels[:, c] > 0) for c in range(labels.shape[1])]
        self.classes = np.array([c for c, idx in enumerate(self.by_class) if len(idx)])
        self.n = len(labels)
        self.config = config
        self.rng = rng

    def __call__(self) -> np.ndarray:
        pairs = []
        for c in self.rng.choice(self.classes, size=self.config.num_similar):
            pairs.extend(self.rng.choice(self.by_class[c], size=2))  # with replacement, as published
        rest = self.rng.choice(self.n, size=self.config.batch_size - 2 * self.config.num_similar)
        return np.concatenate([np.asarray(pairs, dtype=np.int64), rest])


def _crop_and_pad(features: Sequence[np.ndarray], idx: np.ndarray, max_len: int, rng: np.random.Generator):
    lengths = [min(len(features[i]), max_len) for i in idx]
    out = np.zeros((len(idx), max(lengths), features[idx[0]].shape[1]), dtype=np.float32)
    for row, (i, length) in enumerate(zip(idx, lengths)):
        start = rng.integers(len(features[i]) - length + 1)
        out[row, :length] = features[i][start : start + length]
    return torch.from_numpy(out), torch.tensor(lengths)


def train_wtalc(
    features: Sequence[np.ndarray],
    labels: np.ndarray,
    config: WTALCConfig = WTALCConfig(),
    seed: int = 0,
    progress: bool = False,
    desc: str = "W-TALC",
) -> WTALCHead:
    """Fit one head on per-video features (T_i x D) and video-level 0/1 labels (N x C)."""
    if len(features) != len(labels) or len(features) == 0:
        raise ValueError(f"{len(features)} feature sequences for {len(labels)} label rows")
    if config.batch_size < 2 * config.num_similar:
        raise ValueError("batch_size must hold the num_similar pairs")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = WTALCHead(features[0].shape[1], labels.shape[1], config.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sample = _BatchSampler(labels, config, rng)
    label_tensor = torch.from_numpy(np.asarray(labels, dtype=np.float32))
    model.train()
    for _ in progress_bar(range(config.iterations), desc=desc, disable=not progress, leave=False):
        idx = sample()
        x, lengths = _crop_and_pad(features, idx, config.max_seqlen, rng)
        y = label_tensor[idx]
        embedding, cas = model(x)
        loss = config.mil_weight * mil_loss(cas, lengths, y, config.topk_divisor) + (1 - config.mil_weight) * co_activity_loss(
            embedding[: 2 * config.num_similar], cas[: 2 * config.num_similar], lengths[: 2 * config.num_similar],
            y[: 2 * config.num_similar], config.margin,
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model


def class_activations(model: WTALCHead, features: Sequence[np.ndarray]) -> list[np.ndarray]:
    """CAS (T_i x C) of each video, dropout off."""
    model.eval()
    with torch.no_grad():
        return [model(torch.from_numpy(np.asarray(f, dtype=np.float32))[None])[1][0].numpy() for f in features]
