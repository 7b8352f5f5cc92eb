"""The selector: a small MLP that reads the backbone's outputs and scores each model.

Trained with the paper's Eq. 1, a soft cross-entropy
L = sum_x sum_k -G_k(x) log P(M_k | x) against the affinity labels G (hard or
soft). Default recipe from the paper: Adam, lr 1e-3, lr x0.1 at epochs 2 and
4, 5 epochs.

The batch size is not given for small data: the paper trains on Kinetics
(~240k videos), where 5 epochs are thousands of steps. On a few thousand
samples the same 5 epochs at batch 256 would be ~60 steps, too few to fit, so
by default the batch size scales with the data, N // 200 clipped to [8, 256],
giving ~200 steps per epoch whatever N is. Set ``batch_size`` to override.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from condsel.selection.method.affinity import softmax
from condsel.selection.method.chunks import row_chunks
from condsel._io import atomic_path, torch_threads
from condsel.errors import NotFittedError
from condsel.models.costs import count_gflops

INPUT_KINDS = ("sorted", "probs", "probs+sorted")
SORTED_TOP = 10


def selector_inputs(logits: np.ndarray, multilabel: bool = False, kind: str = "sorted") -> np.ndarray:
    """What the selector reads of the backbone's outputs.

    ``probs`` is the class-probability vector (softmax, or per-class sigmoid
    for multi-label), as in the paper. ``sorted`` is its 10 largest values in
    descending order: a class-agnostic confidence profile. With a few thousand
    training videos over 101 classes the class-indexed vector overfits
    (UCF101, 5-fold CV: ``sorted`` closes a positive share of the oracle gap
    on all three splits, ``probs`` does not; see the README), so ``sorted`` is
    the default and ``probs`` the choice for Kinetics-scale training sets.
    """
    if kind not in INPUT_KINDS:
        raise ValueError(f"unknown selector input {kind!r}; choose from {INPUT_KINDS}")
    logits = np.asarray(logits)
    n, c = logits.shape
    width = {"probs": c, "sorted": min(c, SORTED_TOP), "probs+sorted": c + min(c, SORTED_TOP)}[kind]
    out = np.empty((n, width), dtype=np.float32)
    for rows in row_chunks(n, c):  # float64 a chunk at a time: a whole table's would be twice its logits
        z = np.asarray(logits[rows], dtype=np.float64)
        probs = 1.0 / (1.0 + np.exp(-z)) if multilabel else softmax(z)
        top = probs if c <= SORTED_TOP else np.partition(probs, -SORTED_TOP, axis=1)[:, -SORTED_TOP:]
        top = -np.sort(-top, axis=1)
        out[rows] = np.hstack({"probs": [probs], "sorted": [top], "probs+sorted": [probs, top]}[kind])
    return out


def _mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU(), nn.Dropout(dropout)]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class Selector:
    """MLP selector with a scikit-learn-style ``fit`` / ``predict_proba`` API."""

    def __init__(
        self,
        hidden: tuple[int, ...] = (256,),
        epochs: int = 5,
        lr: float = 1e-3,
        milestones: tuple[int, ...] = (2, 4),
        gamma: float = 0.1,
        batch_size: int | None = None,
        dropout: float = 0.0,
        seed: int = 0,
        inputs: str = "sorted",
        multilabel: bool = False,
    ) -> None:
        self.hidden = tuple(hidden)
        self.epochs = epochs
        self.lr = lr
        self.milestones = tuple(milestones)
        self.gamma = gamma
        self.batch_size = batch_size
        self.dropout = dropout
        self.seed = seed
        self.inputs = inputs
        self.multilabel = multilabel

    def features(self, backbone_logits: np.ndarray) -> np.ndarray:
        """The selector's input for these backbone outputs (see :func:`selector_inputs`)."""
        return selector_inputs(backbone_logits, self.multilabel, self.inputs)

    def _config(self) -> dict:
        return dict(
            hidden=list(self.hidden), epochs=self.epochs, lr=self.lr, milestones=list(self.milestones),
            gamma=self.gamma, batch_size=self.batch_size, dropout=self.dropout, seed=self.seed,
            inputs=self.inputs, multilabel=self.multilabel,
        )

    def fit(self, X: np.ndarray, G: np.ndarray) -> Selector:
        X = np.asarray(X, dtype=np.float32)
        G = np.asarray(G, dtype=np.float32)
        if X.ndim != 2 or G.ndim != 2 or len(X) != len(G):
            raise ValueError(f"X {X.shape} and G {G.shape} must be (N, D) and (N, K)")
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self.mean_ = X.mean(axis=0)
        self.scale_ = X.std(axis=0) + 1e-6
        self.net_ = _mlp(X.shape[1], self.hidden, G.shape[1], self.dropout)
        inputs = torch.from_numpy((X - self.mean_) / self.scale_)
        targets = torch.from_numpy(G)
        batch = self.batch_size or int(np.clip(len(X) // 200, 8, 256))
        optimizer = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(self.milestones), self.gamma)
        self.net_.train()
        with torch_threads(1):
            self._train(inputs, targets, batch, optimizer, schedule, generator)
        self.net_.eval()
        return self

    def _train(self, inputs, targets, batch, optimizer, schedule, generator) -> None:
        for _ in range(self.epochs):
            for idx in torch.randperm(len(inputs), generator=generator).split(batch):
                log_p = torch.log_softmax(self.net_(inputs[idx]), dim=1)
                loss = -(targets[idx] * log_p).sum(dim=1).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            schedule.step()

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise NotFittedError("this Selector is not fitted yet; call fit(X, G) first")

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(M_k | x) for each row of ``X`` (N, D): (N, K), rows sum to 1."""
        self._check_fitted()
        inputs = torch.from_numpy((np.asarray(X, dtype=np.float32) - self.mean_) / self.scale_)
        with torch.no_grad(), torch_threads(1):
            return torch.softmax(self.net_(inputs), dim=1).numpy()

    def gflops(self) -> float:
        """Cost of one selector call (one sample), counted from its graph."""
        self._check_fitted()
        return count_gflops(self.net_, torch.zeros(1, len(self.mean_)))

    def save(self, path: str | Path) -> None:
        self._check_fitted()
        state = {
            "config": self._config(),
            "mean": torch.from_numpy(self.mean_),
            "scale": torch.from_numpy(self.scale_),
            "state_dict": self.net_.state_dict(),
        }
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    @classmethod
    def load(cls, path: str | Path) -> Selector:
        try:
            state = torch.load(path, weights_only=True, map_location="cpu")
            config = state["config"]
            selector = cls(**{**config, "hidden": tuple(config["hidden"]), "milestones": tuple(config["milestones"])})
            selector.mean_ = state["mean"].numpy()
            selector.scale_ = state["scale"].numpy()
            weights = state["state_dict"]
            last = max(int(k.split(".")[0]) for k in weights)
            selector.net_ = _mlp(len(selector.mean_), selector.hidden, weights[f"{last}.weight"].shape[0], selector.dropout)
            selector.net_.load_state_dict(weights)
        except Exception as e:  # any malformed file: say which one
            raise ValueError(f"{path}: not a condsel selector checkpoint: {e}") from e
        selector.net_.eval()
        return selector
