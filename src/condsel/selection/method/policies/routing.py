"""Cascade routing: after each member, estimate every larger set's quality from what ran, and run toward the best one.

The state of a video is the set S of members run so far. For every candidate
set T containing S, a small estimator reads class-agnostic features of S's
outputs (each member's top probabilities, entropy and margin, the fused
top-k, agreement and Jensen-Shannon divergence between the members run, the
rank of the fused top-1 in each member, and each pool member's training
accuracy on the predicted class) and predicts T's quality q(T): the chance
its fused top-1 is right (minus its fused loss for multi-label). At a cost
weight lambda the video runs the cheapest unrun member of
argmax_T q(T) - lambda cost(T) and stops when that T is S (Dekoninck et al.,
ICML 2025, "A Unified Approach to Routing and Cascading for LLMs"). Unlike
a cascade the next member depends on what was seen: a cheap generalist's
prediction can send a video to the specialist of its class.

Two training targets are offered: ``right`` (is T's fused top-1 right) and
``gain`` (T's hit minus S's, ties weighted ``tie_weight``); ``auto`` picks
the one whose routing is better on held-out halves of the training samples.
Everything is fitted on the policy's training samples; fused outputs whose
weights are fitted there are cross-fitted (two halves), so the estimators
learn from out-of-sample outputs.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import torch

from condsel._io import atomic_path, torch_threads
from condsel.selection.data.table import PredictionTable
from condsel.selection.method.chunks import row_chunks
from condsel.selection.method.fusion import FUSIONS, MemberOutputs, fit_stacking, gather, member_outputs, stacking_rows, summarize_by_rows
from condsel.selection.method.policies.base import Outcomes, Policy, Routing, budget_thresholds, cost_scale, log_budget, neighbour_mix, video_draw
from condsel.selection.method.policies.cascade import subset_key
from condsel.selection.method.static import subsets

log = logging.getLogger(__name__)

TOP = 3
TARGETS = ("right", "gain", "auto")
ESTIMATORS_FILE = "routing_estimators.pt"
STACKING_SCORES = 500_000  # K <= max_size weights need few rows: a 400-class table's fit reads 1,250
STACKING_STEPS = 10


# ---- features ------------------------------------------------------------------
def _top(probs: np.ndarray, k: int = TOP) -> np.ndarray:
    k = min(k, probs.shape[1])
    return -np.sort(-np.partition(probs, -k, axis=1)[:, -k:], axis=1)


def _entropy(probs: np.ndarray, multilabel: bool) -> np.ndarray:
    p = np.clip(probs, 1e-12, 1.0)
    if multilabel:
        q = np.clip(1 - probs, 1e-12, 1.0)
        return -(p * np.log(p) + q * np.log(q)).mean(axis=1) / np.log(2)
    return -(p * np.log(p)).sum(axis=1) / np.log(max(probs.shape[1], 2))


def _js_divergence(p: np.ndarray, q: np.ndarray, multilabel: bool) -> np.ndarray:
    """(n,) Jensen-Shannon divergence in bits of two members' outputs (mean over classes of Bernoulli ones for multi-label)."""
    def kl(a, b):
        a = np.clip(a, 1e-12, 1.0)
        return a * np.log(a / np.clip(b, 1e-12, 1.0))
    m = (p + q) / 2
    if multilabel:
        pc, qc, mc = 1 - p, 1 - q, 1 - m
        return ((kl(p, m) + kl(q, m) + kl(pc, mc) + kl(qc, mc)) / 2).mean(axis=1) / np.log(2)
    return ((kl(p, m) + kl(q, m)) / 2).sum(axis=1) / np.log(2)


def _summary(probs: np.ndarray, multilabel: bool) -> list[np.ndarray]:
    """How sure one output is: top-k probabilities (single-label), entropy, margin; for multi-label the mean and least class certainty."""
    entropy = _entropy(probs, multilabel)
    if multilabel:
        sure = np.abs(2 * probs - 1)
        return [sure.mean(axis=1), sure.min(axis=1), entropy]
    top = _top(probs, 2 if probs.shape[1] >= 2 else 1)
    margin = top[:, 0] - top[:, 1] if top.shape[1] > 1 else top[:, 0]
    return [*_top(probs).T, entropy, margin]


def state_features(member_probs: list[np.ndarray], fused: np.ndarray, competence: np.ndarray | None, multilabel: bool) -> np.ndarray:
    """(n, F) class-agnostic features of a state: what an estimator reads (arrays are (n, C) probabilities, in the state's member order).

    Per member run: how sure it is, the rank of the fused top-1 among its
    classes (log 1 + rank) and whether its own top-1 agrees (single-label).
    The fused output: how sure it is. Between members run: mean top-1
    agreement (share of classes agreeing, multi-label) and mean JS divergence.
    ``competence`` (n, K): each pool member's prior accuracy on the fused
    top-1 class (single-label).
    """
    member_probs = [np.asarray(p, dtype=np.float32).astype(np.float64) for p in member_probs]  # float32 first: offline and online read alike
    fused = np.asarray(fused, dtype=np.float32).astype(np.float64)
    columns: list[np.ndarray] = []
    if not multilabel:
        top1 = fused.argmax(axis=1)
        rows = np.arange(len(fused))
    for p in member_probs:
        columns += _summary(p, multilabel)
        if not multilabel:
            rank = (p > p[rows, top1][:, None]).sum(axis=1)
            columns += [np.log1p(rank), (p.argmax(axis=1) == top1).astype(np.float64)]
    columns += _summary(fused, multilabel)
    pairs = list(itertools.combinations(range(len(member_probs)), 2))
    if pairs:
        if multilabel:
            agree = [((member_probs[i] > 0.5) == (member_probs[j] > 0.5)).mean(axis=1) for i, j in pairs]
        else:
            agree = [(member_probs[i].argmax(axis=1) == member_probs[j].argmax(axis=1)).astype(np.float64) for i, j in pairs]
        columns += [np.mean(agree, axis=0), np.mean([_js_divergence(member_probs[i], member_probs[j], multilabel) for i, j in pairs], axis=0)]
    out = np.stack(columns, axis=1)
    return out if competence is None else np.hstack([out, competence])


def competence_table(hits: np.ndarray, labels: np.ndarray, classes: int, strength: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each member's per-class training accuracy shrunk toward its overall accuracy: (K, C) prior, and its parts for leave-one-out.

    ``hits`` (K, N) bool on the training samples. Returns the prior, the
    per-class hit counts (K, C) and sample counts (C,).
    """
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    per_class = np.stack([np.bincount(labels, weights=h.astype(np.float64), minlength=classes) for h in hits])
    overall = hits.mean(axis=1, keepdims=True)
    return (per_class + strength * overall) / (counts + strength), per_class, counts


# ---- estimators ------------------------------------------------------------------
class LinearHeads:
    """One linear model per option of a state, on standardised features: logistic (``right``), tanh regression (``gain``) or linear (multi-label).

    Predictions are made feature by feature in float64, so a row's value does
    not depend on which other rows are predicted with it (online = offline).
    """

    def __init__(self, mean: np.ndarray, scale: np.ndarray, weight: np.ndarray, bias: np.ndarray, link: str) -> None:
        self.mean, self.scale, self.weight, self.bias, self.link = mean, scale, weight, bias, link

    @classmethod
    def fit(cls, X: np.ndarray, Y: np.ndarray, W: np.ndarray, link: str, l2: float = 1e-3, steps: int = 20) -> LinearHeads:
        """Fit on features ``X`` (n, F), targets ``Y`` (n, O) and per-target sample weights ``W`` (n, O)."""
        mean = X.mean(axis=0)
        scale = X.std(axis=0) + 1e-6
        with torch_threads(1):
            x = torch.from_numpy((X - mean) / scale)
            y, w = torch.from_numpy(np.asarray(Y, dtype=np.float64)), torch.from_numpy(np.asarray(W, dtype=np.float64))
            weight = torch.zeros((X.shape[1], Y.shape[1]), dtype=torch.float64, requires_grad=True)
            bias = torch.zeros(Y.shape[1], dtype=torch.float64, requires_grad=True)
            optimizer = torch.optim.LBFGS([weight, bias], max_iter=steps, line_search_fn="strong_wolfe")
            total = w.sum().clamp_min(1e-12)

            def closure():
                optimizer.zero_grad()
                z = x @ weight + bias
                if link == "logistic":
                    per = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")
                else:
                    per = ((torch.tanh(z) if link == "tanh" else z) - y) ** 2
                loss = (w * per).sum() / total + l2 * (weight ** 2).sum()
                loss.backward()
                return loss

            optimizer.step(closure)
        return cls(mean, scale, weight.detach().numpy().copy(), bias.detach().numpy().copy(), link)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(n, O) predicted values: probabilities (logistic), gains in [-1, 1] (tanh) or values (identity)."""
        x = (np.asarray(X, dtype=np.float64) - self.mean) / self.scale
        z = np.broadcast_to(self.bias, (len(x), len(self.bias))).copy()
        for f in range(x.shape[1]):
            z += x[:, f:f + 1] * self.weight[f]
        if self.link == "logistic":
            return 1.0 / (1.0 + np.exp(-z))
        return np.tanh(z) if self.link == "tanh" else z

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.{k}": torch.from_numpy(np.asarray(getattr(self, k), dtype=np.float64)) for k in ("mean", "scale", "weight", "bias")}

    @classmethod
    def from_tensors(cls, tensors: dict, prefix: str, link: str) -> LinearHeads:
        return cls(*(tensors[f"{prefix}.{k}"].numpy().astype(np.float64) for k in ("mean", "scale", "weight", "bias")), link)


def dominated_sets(costs: np.ndarray, utility: np.ndarray, slack: float) -> dict[int, int]:
    """Sets pruned by training-fold dominance: index -> a set that costs no more and does at least as well on nearly every sample.

    ``utility`` (S, N) per set and training sample. Set j dominates set i when
    it costs no more and the mean of max(u_i - u_j, 0), what i would win
    over j (for top-1: the share of samples i gets right and j wrong), is at
    most ``slack``. Dominance is per sample, not on the mean: two
    specialists of equal cost and accuracy, right on different samples, are
    both kept. Of several dominating sets the cheapest (then the best) is named.
    """
    out = {}
    for i in range(len(costs)):
        for j in sorted(range(len(costs)), key=lambda j: (costs[j], -utility[j].mean())):
            if j != i and costs[j] <= costs[i] + 1e-12 and np.maximum(utility[i] - utility[j], 0).mean() <= slack:
                if not (costs[j] == costs[i] and np.maximum(utility[j] - utility[i], 0).mean() <= slack and j > i):
                    out[i] = j
                    break
    return out


# ---- the policy ------------------------------------------------------------------
class RoutingPolicy(Policy):
    """Cascade routing over fused subsets of the pruned pool (see the module docstring).

    Parameters
    ----------
    fusion : {"stacked", "mean"}
        How a set's members are fused (stacked: weights per set, fitted on the training samples).
    target : {"right", "gain", "auto"}
        What the quality estimators learn (see the module docstring).
        ``right`` by default: ``auto`` chose it on every training fold of
        the UCF101 pools and of the generated specialist pool (see
        docs/policies.md) and costs two more estimator fits per fit.
    max_members : int
        Members kept by :func:`~condsel.selection.method.prune.prune_members`.
    max_size : int
        Largest candidate set.
    slack : float
        A candidate set is pruned when another costs no more and is right on
        all but this share of the training samples it is right on (for
        multi-label, loses at most this share of the members' largest mean
        loss): see :func:`dominated_sets`.
    tie_weight : float
        Weight of ties (both right or both wrong) under the ``gain`` target.
    prior_strength : float
        Pseudo-samples shrinking a member's per-class accuracy toward its overall one.
    lambdas : int
        Cost weights traced on the training samples; the threshold mixes two neighbours.
    max_scores : int
        Everything but the member pruning is fitted on a seeded subsample of
        at most this many scores (rows x classes; 2,500 videos of 400
        classes): estimators of a few dozen features need no more, and the
        fit's cost stops growing with the table.
    seed : int
        Salt of the per-video draw and of the cross-fitting halves.

    Notes
    -----
    ``threshold`` t is the budget lo (hi / lo)^t of
    :func:`~condsel.selection.method.policies.base.log_budget`. Each cost
    weight's training cost is known; between the two around the budget a
    video takes the dearer one when its draw is below the share that meets
    the budget, as :class:`~condsel.selection.method.policies.static_mix.StaticPolicy` mixes.
    """

    name = "routing"

    def __init__(self, fusion: str = "stacked", target: str = "right", max_members: int = 4, max_size: int = 3, slack: float = 0.01,
                 tie_weight: float = 0.1, prior_strength: float = 20.0, lambdas: int = 40, max_scores: int = 1_000_000, seed: int = 0) -> None:
        self.fusion = fusion
        self.target = target
        self.max_members = max_members
        self.max_size = max_size
        self.slack = slack
        self.tie_weight = tie_weight
        self.prior_strength = prior_strength
        self.lambdas = lambdas
        self.max_scores = max_scores
        self.seed = seed

    # ---- structure -------------------------------------------------------------
    def _weights(self, members) -> np.ndarray | None:
        key = subset_key(members)
        return None if key not in self.weights_ else np.array([self.weights_[key][m] for m in sorted(members)])

    def _build_states(self) -> None:
        """States (every subset of a candidate set, the empty one first), each state's options and where each leads."""
        order = {m: i for i, m in enumerate(self.members_)}
        closure = {()} | {tuple(sorted(s, key=order.get)) for t in self.sets_ for k in range(1, len(t) + 1) for s in itertools.combinations(t, k)}
        self.states_ = sorted(closure, key=lambda s: (len(s), sum(self.gflops_[m] for m in s), [order[m] for m in s]))
        index = {frozenset(s): i for i, s in enumerate(self.states_)}
        self.options_, self.steps_ = [], []
        for s in self.states_:
            larger = sorted((t for t in self.sets_ if set(s) < set(t)), key=lambda t: (self._cost(t), [order[m] for m in t]))
            options = ([] if not s else [s]) + larger
            steps = []
            for t in options:
                if t == s:
                    steps.append(index[frozenset(s)])
                else:
                    nxt = min((m for m in t if m not in s), key=lambda m: (self.gflops_[m], order[m]))
                    steps.append(index[frozenset(s) | {nxt}])
            self.options_.append(options)
            self.steps_.append(np.array(steps, dtype=np.int64))
        self._option_costs = [np.array([self._cost(t) for t in o]) for o in self.options_]

    def _cost(self, members) -> float:
        return float(sum(self.gflops_[m] for m in members))

    # ---- fitting -----------------------------------------------------------------
    def _fit(self, table: PredictionTable) -> None:
        from condsel.selection.method.prune import prune_members

        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; choose from {FUSIONS}")
        if self.target not in TARGETS:
            raise ValueError(f"unknown routing target {self.target!r}; choose from {TARGETS}")
        kept, self.dropped_ = prune_members(table, self.max_members)
        if len(kept) < 2:
            kept = table.models[: max(2, self.max_members)]
        self.members_ = kept
        self.gflops_ = {m: float(table.gflops[m]) for m in kept}
        self.cost_scale_ = cost_scale(table)
        self.multilabel_ = table.multilabel
        rows = stacking_rows(table.num_samples, table.num_classes, self.max_scores, self.seed)
        table = PredictionTable(table.names[rows], table.labels[rows], {m: np.asarray(table.logits[m][rows]) for m in kept}, gflops=self.gflops_)
        outputs = member_outputs(table)  # the sample's own: its member probabilities are kept while fitting (at most max_scores each)
        with outputs.warm():
            for m in kept:
                outputs.probs(m)
            self._fit_sample(table, outputs, kept)

    def _fit_sample(self, table: PredictionTable, outputs: MemberOutputs, kept: list[str]) -> None:
        candidates = subsets(kept, self.max_size)
        self.weights_ = {}
        if self.fusion == "stacked":
            for s in candidates:
                if len(s) > 1:
                    self.weights_[subset_key(s)] = self._fit_weights(table, s, np.arange(table.num_samples))
        utility = np.stack([self._set_utility(outputs, table, s, np.arange(table.num_samples)) for s in candidates])
        costs = np.array([self._cost(s) for s in candidates])
        slack = self.slack * (1.0 if not table.multilabel else float(np.abs(utility[: len(kept)].mean(axis=1)).max()))
        pruned = dominated_sets(costs, utility, slack)
        self.sets_ = [s for i, s in enumerate(candidates) if i not in pruned]
        self.pruned_sets_ = {f"routing set {subset_key(candidates[i])}": f"dominated on the training samples by {subset_key(candidates[j])} (routing never runs toward it)"
                             for i, j in pruned.items()}
        ending = {subset_key(s) for s in self._closure_sets()}
        self.weights_ = {k: w for k, w in self.weights_.items() if k in ending}
        self._build_states()
        train = self._training_data(table, outputs)
        targets = [self.target] if self.target != "auto" else ["right", "gain"]
        if len(targets) > 1:
            scores = {t: self._held_out_area(train, t) for t in targets}
            self.target_scores_ = scores
            self.target_ = max(targets, key=lambda t: (scores[t], t == "right"))
        else:
            self.target_ = targets[0]
        self.estimators_ = self._fit_estimators(train, self.target_, np.arange(table.num_samples))
        log.debug("routing over %s: %d candidate sets, %d pruned, target %s", self.members_, len(self.sets_), len(self.pruned_sets_), self.target_)
        self.lambda_front_ = self._lambda_front(train)
        self.overhead_gflops_ = 0.0  # a few hundred multiply-adds per step

    def _closure_sets(self) -> list[tuple[str, ...]]:
        """Every fused set of two or more members a routed video can end with (the sets' subsets), each once."""
        return sorted({tuple(sorted(c)) for t in self.sets_ for k in range(2, len(t) + 1) for c in itertools.combinations(t, k)})

    def _fit_weights(self, table: PredictionTable, members, rows: np.ndarray) -> dict[str, float]:
        ordered = sorted(members)
        labels = table.labels[rows]
        w = fit_stacking([table.logits[m][rows] for m in ordered], labels, steps=STACKING_STEPS, max_scores=STACKING_SCORES, seed=self.seed)
        return {m: float(x) for m, x in zip(ordered, w)}

    def _fused(self, outputs: MemberOutputs, members, rows=None, weights: dict | None = None) -> np.ndarray:
        """A set's fused probabilities (on ``rows``): stacked with ``weights`` (default: the fitted ones), or the mean."""
        ordered = sorted(members)
        if weights is None:
            w = self._weights(ordered)
        else:
            w = None if subset_key(ordered) not in weights else np.array([weights[subset_key(ordered)][m] for m in ordered])
        return outputs.fuse(ordered, w, rows)

    def _set_utility(self, outputs: MemberOutputs, table: PredictionTable, members, rows: np.ndarray, weights: dict | None = None) -> np.ndarray:
        """(len(rows),) a set's per-sample utility (1 per top-1 hit, or minus its fused loss)."""
        stats = summarize_by_rows(len(rows), outputs.num_classes, lambda chunk: self._fused(outputs, members, rows[chunk], weights),
                                  table.labels[rows], table.multilabel)
        return stats.utility(table.labels[rows])

    def _training_data(self, table: PredictionTable, outputs: MemberOutputs) -> dict:
        """Out-of-sample features of every state and utilities of every state on the training samples.

        Stacking weights of each half are fitted on the other half; the
        competence prior of a sample leaves that sample out.
        """
        n = table.num_samples
        half = np.random.default_rng(self.seed).permutation(n) % 2
        fold_weights = []
        for h in (0, 1):
            rows = np.flatnonzero(half != h)
            fold_weights.append({subset_key(s): self._fit_weights(table, s, rows) for s in self._closure_sets()} if self.fusion == "stacked" else {})
        prior = None
        if not table.multilabel:
            hits = np.stack([outputs.stats((m,)).hits(table.labels) for m in self.members_])
            prior = competence_table(hits, table.labels, table.num_classes, self.prior_strength) + (hits,)
        self.prior_ = None if prior is None else prior[0]
        utility, features = {}, {}
        for s in self.states_[1:]:
            u, x = np.empty(n), None
            for h in (0, 1):
                rows = np.flatnonzero(half == h)
                u[rows] = self._set_utility(outputs, table, s, rows, fold_weights[h])
                part = self._features(outputs, s, rows, fold_weights[h], prior, table.labels[rows] if prior is not None else None)
                x = np.empty((n, part.shape[1])) if x is None else x
                x[rows] = part
            utility[s], features[s] = u, x
        return {"utility": utility, "features": features, "half": half, "n": n}

    def _features(self, outputs: MemberOutputs, state, rows: np.ndarray, weights: dict | None, prior, labels: np.ndarray | None) -> np.ndarray:
        """Features of ``state`` on ``rows``, a chunk of rows at a time; ``labels`` (training) make the competence prior leave-one-out."""
        parts = []
        for chunk in row_chunks(len(rows), outputs.num_classes):
            r = rows[chunk]
            fused = self._fused(outputs, state, r, weights)
            competence = None
            if prior is not None:
                competence = self._competence(prior, np.asarray(fused, dtype=np.float32).argmax(axis=1), None if labels is None else labels[chunk], r)
            parts.append(state_features([outputs.probs(m, r) for m in state], fused, competence, self.multilabel_))
        return np.vstack(parts)

    def _competence(self, prior, predicted: np.ndarray, labels: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
        """(n, K) each member's prior accuracy on the predicted class; on training samples (``labels``) without the sample itself."""
        if labels is None:
            return prior[0][:, predicted].T
        _, per_class, counts, *hits = prior
        own = (labels == predicted)[None, :]
        overall = hits[0].mean(axis=1, keepdims=True)
        h = per_class[:, predicted] - own * hits[0][:, rows]
        c = counts[predicted][None, :] - own
        return ((h + self.prior_strength * overall) / (c + self.prior_strength)).T

    def _fit_estimators(self, train: dict, target: str, rows: np.ndarray) -> list[LinearHeads | None]:
        """One :class:`LinearHeads` per non-empty state (the empty state's options are ranked by their mean utility)."""
        utility = train["utility"]
        link = "identity" if self.multilabel_ else ("logistic" if target == "right" else "tanh")
        heads: list[LinearHeads | None] = [None]
        for i, s in enumerate(self.states_[1:], start=1):
            own = utility[s][rows]
            Y = np.stack([utility[t][rows] for t in self.options_[i]], axis=1)
            W = np.ones_like(Y)
            if target == "gain":
                Y = Y - own[:, None]
                if not self.multilabel_:
                    W = np.where(Y == 0, self.tie_weight, 1.0)
            heads.append(LinearHeads.fit(train["features"][s][rows], Y, W, link))
        self.empty_values_ = np.array([utility[t][rows].mean() for t in self.options_[0]])
        return heads

    def _values(self, heads: list, state: int, features: np.ndarray | None, n: int, target: str) -> np.ndarray:
        """(n, options) what each option of a state is worth to the rows in it (before the cost term)."""
        if state == 0:
            return np.broadcast_to(self.empty_values_, (n, len(self.empty_values_)))
        v = heads[state].predict(features)
        if target == "gain":
            v[:, 0] = 0.0  # stopping gains nothing
        return v

    def _route_states(self, values, n: int, lam: float) -> np.ndarray:
        """(n,) the state each row ends in at cost weight ``lam``; ``values(state, rows)`` gives its options' worth."""
        state = np.zeros(n, dtype=np.int64)
        active = np.ones(n, dtype=bool)
        for _ in range(len(self.members_) + 1):
            if not active.any():
                break
            for s in np.unique(state[active]):
                rows = np.flatnonzero(active & (state == s))
                choice = (values(int(s), rows) - lam * self._option_costs[s]).argmax(axis=1)
                nxt = self.steps_[s][choice]
                stop = nxt == s
                active[rows[stop]] = False
                state[rows[~stop]] = nxt[~stop]
        return state

    def _lambda_grid(self) -> np.ndarray:
        low = min(self.gflops_.values())
        return np.r_[0.0, np.geomspace(1e-4, 10.0, self.lambdas - 1) / low]

    def _trace(self, heads, train: dict, rows: np.ndarray, target: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Training cost and utility of each cost weight, routing ``rows`` with ``heads``; and the lambdas."""
        cached = {}

        def values(s, r):
            if s not in cached:
                cached[s] = self._values(heads, s, None if s == 0 else train["features"][self.states_[s]][rows], len(rows), target)
            return cached[s][r]

        lams = self._lambda_grid()
        state_cost = np.array([self._cost(s) for s in self.states_])
        state_util = np.stack([np.zeros(len(rows))] + [train["utility"][s][rows] for s in self.states_[1:]])
        costs, utils = [], []
        for lam in lams:
            final = self._route_states(values, len(rows), lam)
            costs.append(state_cost[final].mean())
            utils.append(state_util[final, np.arange(len(rows))].mean())
        return np.array(costs), np.array(utils), lams

    def _held_out_area(self, train: dict, target: str) -> float:
        """Mean utility over the training cost range when one half's estimators route the other half (the target's score)."""
        area = []
        for h in (0, 1):
            heads = self._fit_estimators(train, target, np.flatnonzero(train["half"] != h))
            costs, utils, _ = self._trace(heads, train, np.flatnonzero(train["half"] == h), target)
            order = np.argsort(costs, kind="stable")
            c, u = costs[order], np.maximum.accumulate(utils[order])
            area.append(float(np.trapezoid(u, c) / (c[-1] - c[0])) if c[-1] > c[0] else float(u[-1]))
        return float(np.mean(area))

    def _lambda_front(self, train: dict) -> list[dict]:
        """Cost weights by ascending training cost, one per distinct cost, with that cost."""
        costs, _, lams = self._trace(self.estimators_, train, np.arange(train["n"]), self.target_)
        front = {}
        for lam, c in sorted(zip(lams, costs), key=lambda x: (x[1], -x[0])):
            front.setdefault(round(float(c), 9), float(lam))
        return [{"lambda": lam, "gflops": c} for c, lam in sorted(front.items())]

    # ---- routing -----------------------------------------------------------------
    def _prepare(self, table: PredictionTable):
        table = super()._prepare(table)
        return member_outputs(table), video_draw(table.names, self.seed), table.labels, {}, {}

    def _prior(self):
        return None if self.prior_ is None else (self.prior_,)

    def _state_values(self, prepared, state: int, rows: np.ndarray) -> np.ndarray:
        outputs, _, labels, values, _ = prepared
        if state not in values:
            n = len(labels)
            features = None if state == 0 else self._features(outputs, self.states_[state], np.arange(n), None, self._prior(), None)
            values[state] = self._values(self.estimators_, state, features, n, self.target_)
        return values[state][rows]

    def _finals(self, prepared, threshold: float) -> np.ndarray:
        """(N,) each row's final state at ``threshold``: the two neighbouring cost weights mixed by the video's draw."""
        outputs, draws, labels, _, finals = prepared
        a, b, share = neighbour_mix(np.array([p["gflops"] for p in self.lambda_front_]), log_budget(threshold, self.cost_scale_))
        for k in {a, b}:
            if k not in finals:
                finals[k] = self._route_states(lambda s, r: self._state_values(prepared, s, r), len(labels), self.lambda_front_[k]["lambda"])
        return np.where(draws < share, finals[b], finals[a])

    def _ran(self, final: np.ndarray) -> np.ndarray:
        runs = np.array([[m in s for m in self.members_] for s in self.states_])
        return runs[final]

    def _route(self, prepared, threshold: float) -> Routing:
        outputs = prepared[0]
        final = self._finals(prepared, threshold)
        ran = self._ran(final)
        return Routing(ran, gather(lambda s, rows: self._fused(outputs, self.states_[s], rows), final), self.routed_gflops(ran))

    def _outcomes(self, prepared, thresholds: np.ndarray) -> Outcomes:
        outputs, _, labels, _, _ = prepared
        finals = np.stack([self._finals(prepared, float(t)) for t in thresholds])
        used = np.unique(finals)
        stats = [summarize_by_rows(len(labels), outputs.num_classes, lambda rows, s=s: self._fused(outputs, self.states_[s], rows), labels, self.multilabel_)
                 for s in used]
        return Outcomes(self.routed_gflops(self._ran(finals)), np.searchsorted(used, finals), stats)

    def _settings(self, threshold: float) -> dict:
        a, b, share = neighbour_mix(np.array([p["gflops"] for p in self.lambda_front_]), log_budget(threshold, self.cost_scale_))
        return {"lambda": [{"lambda": self.lambda_front_[a]["lambda"], "share": 1.0 - share}]
                + ([{"lambda": self.lambda_front_[b]["lambda"], "share": share}] if b != a else [])}

    def _sweep_thresholds(self) -> np.ndarray:
        return np.union1d(np.linspace(0.0, 1.0, 51), budget_thresholds(np.array([p["gflops"] for p in self.lambda_front_]), self.cost_scale_))

    # ---- online ------------------------------------------------------------------
    def _next(self, outputs: dict[str, np.ndarray], threshold: float, video: str | None) -> list[str]:
        state = self._state_index(outputs)
        a, b, share = neighbour_mix(np.array([p["gflops"] for p in self.lambda_front_]), log_budget(threshold, self.cost_scale_))
        if b != a and video is None:
            raise ValueError(f"at threshold {threshold} this routing policy mixes two cost weights per video; name the video (video=...)")
        k = b if b != a and video_draw([video], self.seed)[0] < share else a
        if state == 0:
            values = self._values(self.estimators_, 0, None, 1, self.target_)
        else:
            one = MemberOutputs({m: v[None, :] for m, v in outputs.items()}, self.multilabel_)
            features = self._features(one, self.states_[state], np.arange(1), None, self._prior(), None)
            values = self._values(self.estimators_, state, features, 1, self.target_)
        choice = int((values - self.lambda_front_[k]["lambda"] * self._option_costs[state]).argmax(axis=1)[0])
        nxt = self.steps_[state][choice]
        return [] if nxt == state else [m for m in self.states_[nxt] if m not in outputs]

    def _state_index(self, outputs) -> int:
        ran = frozenset(outputs)
        for i, s in enumerate(self.states_):
            if frozenset(s) == ran:
                return i
        raise ValueError(f"this routing policy never runs exactly {sorted(ran)}; its states are {[list(s) for s in self.states_]}")

    def _final(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        state = self.states_[self._state_index(outputs)]
        return self._fused(MemberOutputs(outputs, self.multilabel_), state)

    # ---- persistence ---------------------------------------------------------------
    def _fitted_state(self, directory: Path) -> dict:
        tensors = {f"state{i}": h for i, h in enumerate(self.estimators_) if h is not None}
        payload = {k: v for i, h in tensors.items() for k, v in h.tensors(i).items()}
        payload["empty_values"] = torch.from_numpy(np.asarray(self.empty_values_, dtype=np.float64))
        if self.prior_ is not None:
            payload["competence"] = torch.from_numpy(self.prior_)
        with atomic_path(directory / ESTIMATORS_FILE) as tmp:
            torch.save(payload, tmp)
        return {
            "estimators": ESTIMATORS_FILE, "target": self.target_, "sets": [list(s) for s in self.sets_], "weights": self.weights_,
            "lambda_front": self.lambda_front_, "cost_scale": self.cost_scale_, "pruned_sets": self.pruned_sets_,
            "target_scores": getattr(self, "target_scores_", {}),
        }

    def _restore(self, fitted: dict, directory: Path) -> None:
        self.target_ = str(fitted["target"])
        if self.target_ not in ("right", "gain"):
            raise ValueError(f"unknown target {self.target_!r}")
        self.sets_ = [tuple(str(m) for m in s) for s in fitted["sets"]]
        self.weights_ = {str(k): {str(m): float(w) for m, w in ws.items()} for k, ws in fitted["weights"].items()}
        self.lambda_front_ = [{"lambda": float(p["lambda"]), "gflops": float(p["gflops"])} for p in fitted["lambda_front"]]
        self.cost_scale_ = [float(x) for x in fitted["cost_scale"]]
        self.pruned_sets_ = {str(k): str(v) for k, v in fitted.get("pruned_sets", {}).items()}
        self.target_scores_ = {str(k): float(v) for k, v in fitted.get("target_scores", {}).items()}
        if not self.lambda_front_:
            raise ValueError("empty lambda front")
        self._build_states()
        try:
            payload = torch.load(directory / fitted["estimators"], weights_only=True, map_location="cpu")
        except Exception as e:  # any malformed file: say which one
            raise ValueError(f"{directory / fitted['estimators']}: not a condsel routing estimator file: {e}") from e
        link = "identity" if self.multilabel_ else ("logistic" if self.target_ == "right" else "tanh")
        self.estimators_ = [None] + [LinearHeads.from_tensors(payload, f"state{i}", link) for i in range(1, len(self.states_))]
        self.empty_values_ = payload["empty_values"].numpy().astype(np.float64)
        self.prior_ = payload["competence"].numpy() if "competence" in payload else None
