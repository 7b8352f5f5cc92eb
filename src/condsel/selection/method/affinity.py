"""Model-affinity labels: which model was the best trade-off for a sample.

Paper Eq. 2: G_k(x) = 1[argmin_i (L_cls(M_i, x, y) + alpha * F_i) = k], with
F_i = flops_i / sum(flops). L_cls is cross-entropy (single-label) or binary
cross-entropy averaged over classes (multi-label). Ties go to the cheapest
model: models are always ordered by ascending cost.
"""

from __future__ import annotations

import numpy as np

from condsel.selection.method.chunks import row_chunks


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def classification_loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-sample loss of one model: CE for class indices, mean BCE for 0/1 label matrices."""
    logits = np.asarray(logits)
    out = np.empty(len(logits))
    for rows in row_chunks(len(logits), logits.shape[1]):  # float64 a chunk at a time
        z, y = np.asarray(logits[rows], dtype=np.float64), labels[rows]
        if labels.ndim == 1:
            out[rows] = -log_softmax(z)[np.arange(len(y)), y]
        else:  # numerically stable BCE with logits: max(z, 0) - z*y + log(1 + exp(-|z|))
            out[rows] = (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean(axis=1)
    return out


def loss_matrix(logits: list[np.ndarray], labels: np.ndarray) -> np.ndarray:
    """(N, K) losses for K models given in cost order."""
    return np.stack([classification_loss(z, labels) for z in logits], axis=1)


def normalized_costs(gflops: np.ndarray) -> np.ndarray:
    gflops = np.asarray(gflops, dtype=np.float64)
    return gflops / gflops.sum()


def hard_affinity(losses: np.ndarray, costs: np.ndarray, alpha: float) -> np.ndarray:
    """One-hot G (N, K) of Eq. 2; ``costs`` are the normalized F_k."""
    penalized = losses + alpha * np.asarray(costs)[None, :]
    best = penalized.argmin(axis=1)  # first minimum = cheapest on ties
    return np.eye(losses.shape[1], dtype=np.float32)[best]


def soft_affinity(losses: np.ndarray, costs: np.ndarray, alpha: float, temperature: float) -> np.ndarray:
    """Soft G: softmax over -(L + alpha F) / T; tends to the hard labels as T -> 0."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    penalized = losses + alpha * np.asarray(costs)[None, :]
    return softmax(-penalized / temperature, axis=1).astype(np.float32)


def affinity_targets(losses: np.ndarray, costs: np.ndarray, alpha: float, temperature: float | None) -> np.ndarray:
    """Eq. 2's labels: hard (one-hot) without a temperature, soft with one."""
    if temperature is None:
        return hard_affinity(losses, costs, alpha)
    return soft_affinity(losses, costs, alpha, temperature)


def pool_order(models: list[str], backbone: str) -> list[str]:
    """The backbone first (it always runs), then the other ``models`` in their given (ascending cost) order."""
    if backbone not in models:
        raise ValueError(f"backbone {backbone!r} is not among the models {sorted(models)}")
    return [backbone] + [m for m in models if m != backbone]
