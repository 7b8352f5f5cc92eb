"""Accuracy-vs-cost curves: the threshold sweep, baselines and bounds.

Everything here works on arrays in *pool order*: column 0 is the backbone,
which always runs; the other models follow by ascending cost. ``costs[k]`` is
the cost per sample when model k is chosen, already including the backbone
and the selector (see :func:`selection_costs`).
"""

from __future__ import annotations

import numpy as np


def selection_costs(gflops: np.ndarray, selector_gflops: float) -> np.ndarray:
    """Per-sample cost of choosing each model: backbone + chosen model (if not the backbone) + selector."""
    gflops = np.asarray(gflops, dtype=np.float64)
    costs = gflops[0] + gflops + selector_gflops
    costs[0] = gflops[0] + selector_gflops
    return costs


def choose_models(proba: np.ndarray, threshold: float) -> np.ndarray:
    """Paper §3.4: the cheapest model whose confidence is >= threshold; the costliest if none is."""
    above = proba >= threshold
    return np.where(above.any(axis=1), above.argmax(axis=1), proba.shape[1] - 1)


def sweep(proba: np.ndarray, values: np.ndarray, thresholds: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted mean of ``values[n, chosen_n(t)]`` for every threshold t, without a loop over samples.

    With prefix maxima M_k = max(p_0..p_k), the cheapest model with p >= t is
    the first k with M_k >= t, so sample n takes model k exactly for t in
    (M_{k-1}, M_k] (the last model for every t > M_{K-2}). Each (n, k) then
    adds its value to one contiguous run of the sorted thresholds, which a
    difference array accumulates in O(N K log T).

    ``values`` is (N, K) or (V, N, K) for several quantities at once.
    ``thresholds`` must be sorted ascending. Returns (T,) or (V, T).
    """
    values = np.asarray(values, dtype=np.float64)
    squeeze = values.ndim == 2
    values = values[None] if squeeze else values
    n, k = proba.shape
    t = len(thresholds)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    prefix_max = np.maximum.accumulate(proba, axis=1)
    upper = np.searchsorted(thresholds, prefix_max, side="right")  # first t above M_k
    upper[:, -1] = t
    lower = np.empty_like(upper)
    lower[:, 0] = 0
    lower[:, 1:] = upper[:, :-1]
    out = np.empty((len(values), t))
    for i, v in enumerate(values):
        contribution = (v * w[:, None]).ravel()
        delta = np.bincount(lower.ravel(), contribution, minlength=t + 1) - np.bincount(upper.ravel(), contribution, minlength=t + 1)
        out[i] = np.cumsum(delta[:t]) / w.sum()
    return out[0] if squeeze else out


def choice_fractions(proba: np.ndarray, thresholds: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(T, K) share of samples routed to each model at each threshold."""
    k = proba.shape[1]
    onehots = np.broadcast_to(np.eye(k)[:, None, :], (k, proba.shape[0], k))
    return sweep(proba, onehots, thresholds, weights).T


def random_selection(
    correct: np.ndarray, fractions: np.ndarray, seeds: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy of routing random samples in the selector's per-model proportions.

    Same cost as the selector at every threshold by construction; mean and
    standard deviation over ``seeds`` random assignments.
    """
    n, k = correct.shape
    rng = np.random.default_rng(seed)
    counts = np.rint(fractions * n).astype(np.int64)
    counts[:, -1] = n - counts[:, :-1].sum(axis=1)
    ends = np.cumsum(counts, axis=1)
    starts = ends - counts
    runs = np.empty((seeds, len(fractions)))
    for s in range(seeds):
        shuffled = correct[rng.permutation(n)].astype(np.int64)
        prefix = np.vstack([np.zeros((1, k), np.int64), np.cumsum(shuffled, axis=0)])
        cols = np.arange(k)[None, :]
        runs[s] = (prefix[ends, cols] - prefix[starts, cols]).sum(axis=1) / n
    return runs.mean(axis=0), runs.std(axis=0)


def oracle_curve(correct: np.ndarray, costs: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact oracle: each wrong sample upgrades to its cheapest correct model, cheapest upgrades first.

    ``costs`` are the oracle's per-sample costs (backbone + chosen model, no
    selector). Returns (costs, accuracies), one point per upgrade plus the start.
    """
    n, _ = correct.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    total = w.sum()
    needs = ~correct[:, 0] & correct.any(axis=1)
    first_correct = correct.argmax(axis=1)
    extra = costs[first_correct] - costs[0]
    idx = np.flatnonzero(needs)
    order = idx[np.argsort(extra[idx], kind="stable")]
    start_acc = (w * correct[:, 0]).sum() / total
    acc = start_acc + np.r_[0.0, np.cumsum(w[order])] / total
    cost = costs[0] + np.r_[0.0, np.cumsum(w[order] * extra[order])] / total
    return cost, acc


def upper_hull(costs: np.ndarray, accs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper concave envelope of single-model points up to the most accurate one.

    What randomly mixing single models (each run alone) can reach.
    """
    order = np.lexsort((-np.asarray(accs), np.asarray(costs)))
    hull: list[tuple[float, float]] = []
    for c, a in zip(np.asarray(costs)[order], np.asarray(accs)[order]):
        if hull and c == hull[-1][0]:
            continue  # same cost, lower accuracy (sorted)
        while len(hull) >= 2:
            (c1, a1), (c2, a2) = hull[-2], hull[-1]
            if (a2 - a1) * (c - c1) <= (a - a1) * (c2 - c1):
                hull.pop()
            else:
                break
        hull.append((float(c), float(a)))
    best = int(np.argmax([a for _, a in hull]))
    hull = hull[: best + 1]
    return np.array([c for c, _ in hull]), np.array([a for _, a in hull])


def pareto_indices(costs: np.ndarray, accs: np.ndarray) -> np.ndarray:
    """Indices of the points no cheaper-or-equal point beats, ascending cost."""
    order = np.lexsort((-accs, costs))
    a = accs[order]
    return order[a > np.r_[-np.inf, np.maximum.accumulate(a)[:-1]]]


def pareto_front(costs: np.ndarray, accs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points not beaten by a cheaper-or-equal, more accurate point; ascending cost."""
    keep = pareto_indices(costs, accs)
    return costs[keep], accs[keep]


def curve_at(costs: np.ndarray, accs: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Accuracy of a monotone curve on a cost grid: linear in between, flat beyond its end, NaN before its start."""
    values = np.interp(grid, costs, accs)
    values[grid < costs[0]] = np.nan
    return values
