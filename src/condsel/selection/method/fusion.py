"""Fusing the outputs of several pool members into one prediction.

Two rules. ``mean`` averages class probabilities (softmax, or per-class
sigmoid for multi-label), the usual late fusion of two-stream networks.
``stacked`` learns one non-negative weight per member and applies the
activation to the weighted sum of logits: softmax(sum_k w_k z_k) is a weighted
product of the members' distributions, so the weights also calibrate the
fused confidence that a cascade stops on. The weights are fitted by
minimising the cross-entropy (BCE for multi-label) on training samples only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from condsel._io import torch_threads
from condsel.selection.method.affinity import softmax

FUSIONS = ("mean", "stacked")
FUSED_BYTES = 1 << 30  # fused subsets kept per table (see MemberOutputs)


def probabilities(logits: np.ndarray, multilabel: bool) -> np.ndarray:
    """Class probabilities of raw scores: softmax over classes, or a sigmoid per class."""
    logits = np.asarray(logits, dtype=np.float64)
    if multilabel:
        return 0.5 * (1.0 + np.tanh(0.5 * logits))  # sigmoid without overflow warnings
    return softmax(logits)


def fuse(logits: Sequence[np.ndarray], multilabel: bool, weights: np.ndarray | None = None) -> np.ndarray:
    """Fused probabilities of members' logits, each (..., C): mean of probabilities, or stacked with ``weights``."""
    if not len(logits):
        raise ValueError("nothing to fuse: no member outputs")
    if weights is None:
        return np.mean([probabilities(z, multilabel) for z in logits], axis=0)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(logits),):
        raise ValueError(f"{len(weights)} fusion weights for {len(logits)} members")
    combined = sum(w * np.asarray(z, dtype=np.float64) for w, z in zip(weights, logits))
    return probabilities(combined, multilabel)


class MemberOutputs:
    """Members' logits with their probabilities (float32) computed once, for fusing many subsets of them.

    With ``shared`` (the outputs of a larger table) and ``rows`` (this
    table's rows there), probabilities and mean-fused subsets are read from
    the shared ones instead of computed again: see :func:`member_outputs`.
    Fused subsets are kept while they total at most ``FUSED_BYTES``, and
    made again on each call beyond it.
    """

    def __init__(self, logits: Mapping[str, np.ndarray], multilabel: bool, shared: MemberOutputs | None = None, rows: np.ndarray | None = None) -> None:
        self.logits = logits
        self.multilabel = multilabel
        self.shared, self.rows = shared, rows
        self._probs: dict[str, np.ndarray] = {}
        self._fused: dict[tuple[str, ...], np.ndarray] = {}

    def probs(self, member: str) -> np.ndarray:
        if self.shared is not None:
            return self.shared.probs(member)[self.rows]  # a transient copy: subsets keep nothing
        if member not in self._probs:
            self._probs[member] = probabilities(self.logits[member], self.multilabel).astype(np.float32)
        return self._probs[member]

    def fuse(self, members: Sequence[str], weights: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """As :func:`fuse` on these members' logits (on ``rows`` only, when given)."""
        if weights is None and self.shared is not None:
            return self.shared.fuse(members, rows=self.rows if rows is None else self.rows[rows])
        if weights is None and len(members) > 1:
            key = tuple(sorted(members))
            if key not in self._fused:
                fused = np.mean([self.probs(m) for m in key], axis=0)
                if sum(a.nbytes for a in self._fused.values()) + fused.nbytes > FUSED_BYTES:
                    return fused if rows is None else fused[rows]
                self._fused[key] = fused
            return self._fused[key] if rows is None else self._fused[key][rows]
        rows = slice(None) if rows is None else rows
        if weights is None:
            return self.probs(members[0])[rows]
        return fuse([self.logits[m][rows] for m in members], self.multilabel, weights)


def member_outputs(table) -> MemberOutputs:
    """``table``'s member probabilities, computed once on its root table and shared by every subset (folds, policies, fits)."""
    root, rows = table.origin
    shared = root.__dict__.get("_member_outputs")
    if shared is None:
        shared = root.__dict__["_member_outputs"] = MemberOutputs(root.logits, root.multilabel)
    return shared if root is table else MemberOutputs(_Rows(root.logits, rows), table.multilabel, shared, rows)


class _Rows(Mapping):
    """A mapping's arrays restricted to ``rows``, sliced on access: a view that keeps no copy."""

    def __init__(self, arrays: Mapping[str, np.ndarray], rows: np.ndarray) -> None:
        self.arrays, self.rows = arrays, rows

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key][self.rows]

    def __iter__(self):
        return iter(self.arrays)

    def __len__(self) -> int:
        return len(self.arrays)


def fused_loss(probs: np.ndarray, labels: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """(N,) cross-entropy of fused probabilities; mean BCE over classes for a 0/1 label matrix (as Eq. 2's L_cls)."""
    probs = np.clip(np.asarray(probs, dtype=np.float64), eps, 1 - eps)
    if np.asarray(labels).ndim == 2:
        return -(labels * np.log(probs) + (1 - labels) * np.log(1 - probs)).mean(axis=-1)
    return -np.log(probs[np.arange(len(labels)), labels])


def fit_stacking(logits: Sequence[np.ndarray], labels: np.ndarray, steps: int = 25) -> np.ndarray:
    """Non-negative per-member weights minimising the fused cross-entropy (BCE for a 0/1 label matrix).

    Weights start at 1/K (the geometric-mean rule) and are optimised with
    L-BFGS through a softplus, so they stay positive.
    """
    multilabel = np.asarray(labels).ndim == 2
    with torch_threads(1):
        z = torch.from_numpy(np.stack([np.asarray(x, dtype=np.float32) for x in logits]))  # (K, N, C)
        y = torch.from_numpy(np.asarray(labels)).to(torch.float32 if multilabel else torch.long)
        start = np.log(np.expm1(1.0 / len(logits)))
        raw = torch.full((len(logits),), float(start), dtype=torch.float32, requires_grad=True)
        optimizer = torch.optim.LBFGS([raw], max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            combined = torch.einsum("k,knc->nc", torch.nn.functional.softplus(raw), z)
            if multilabel:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(combined, y)
            else:
                loss = torch.nn.functional.cross_entropy(combined, y)
            loss.backward()
            return loss

        optimizer.step(closure)
        return torch.nn.functional.softplus(raw).detach().numpy().astype(np.float64)
