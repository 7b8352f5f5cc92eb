"""A cascade whose stopping rule is learned: one small model reads the fused outputs so far and says stop or go on.

Its target is Eq. 2 generalised to prefixes: for each training sample, the
prefix k* minimising L(fused prediction of the first k members) + alpha F_k,
F_k the prefix's cost over the sum of all prefix costs, cheapest on ties. At
stage k the label is "stop" when k >= k*. The model reads class-agnostic
features (the fused top probabilities, entropy, stage agreement, the stage),
so it transfers across classes as the sorted-input selector does. One
threshold on its stop probability sweeps the whole curve: stop when
P(stop) > t, so t = 0 stops after the first member and t = 1 runs them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from condsel._argtypes import nonnegative_float, nonnegative_int, positive_float, positive_int
from condsel.selection.method.affinity import hard_affinity, normalized_costs
from condsel.selection.method.fusion import MemberOutputs, gather, member_outputs
from condsel.selection.method.policies.base import Outcomes, Policy, Routing
from condsel.selection.method.network import Selector
from condsel.selection.data.table import PredictionTable

TOP = 5


def stage_features(fused: np.ndarray, previous: np.ndarray, latest: np.ndarray, stage: int, stages: int, multilabel: bool) -> np.ndarray:
    """(N, TOP + 3 + stages) stopping features at one stage (arrays are (N, C) probabilities; (C,) is one sample).

    The fused top-``TOP`` probabilities, normalised entropy, whether the fused
    prediction agrees with the previous stage's and with the latest member
    alone (the share of classes that agree, for multi-label), and the stage one-hot.
    """
    fused, previous, latest = (np.atleast_2d(np.asarray(x)) for x in (fused, previous, latest))
    top = -np.sort(-np.partition(fused, -TOP, axis=1)[:, -TOP:], axis=1) if fused.shape[1] > TOP else -np.sort(-fused, axis=1)
    p = np.clip(fused, 1e-12, 1.0)
    if multilabel:
        q = np.clip(1 - fused, 1e-12, 1.0)
        entropy = -(p * np.log(p) + q * np.log(q)).mean(axis=1) / np.log(2)
        agree_prev = ((fused > 0.5) == (previous > 0.5)).mean(axis=1)
        agree_latest = ((fused > 0.5) == (latest > 0.5)).mean(axis=1)
    else:
        entropy = -(p * np.log(p)).sum(axis=1) / np.log(fused.shape[1])
        agree_prev = (fused.argmax(axis=1) == previous.argmax(axis=1)).astype(np.float64)
        agree_latest = (fused.argmax(axis=1) == latest.argmax(axis=1)).astype(np.float64)
    onehot = np.zeros((len(fused), stages))
    onehot[:, stage] = 1.0
    return np.hstack([top, entropy[:, None], agree_prev[:, None], agree_latest[:, None], onehot]).astype(np.float32)


def prefix_targets(losses: np.ndarray, cumulative: np.ndarray, alpha: float) -> np.ndarray:
    """(N,) k*: the cheapest prefix minimising loss + alpha * normalised prefix cost (Eq. 2 over prefixes)."""
    return hard_affinity(losses, normalized_costs(cumulative), alpha).argmax(axis=1)


class LearnedCascadePolicy(Policy):
    """A cascade over ``members`` (default: the pruned pool by ascending cost) with a learned stopping rule.

    Parameters
    ----------
    members : list of str, optional
        The order to run them in.
    alpha : float
        Cost weight of the prefix targets (Eq. 2).
    hidden, epochs, lr, seed
        The stopping model: an MLP trained with the selector's recipe.
    """

    name = "learned_cascade"
    _tuple_params = ("hidden",)
    _ranges = {"alpha": nonnegative_float, "hidden": positive_int, "epochs": positive_int, "lr": positive_float, "seed": nonnegative_int}

    def __init__(self, members: list[str] | None = None, alpha: float = 0.5, hidden: tuple[int, ...] = (32,), epochs: int = 5, lr: float = 1e-3, seed: int = 0) -> None:
        self.members = members
        self.alpha = alpha
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.seed = seed

    def _fit(self, table: PredictionTable) -> None:
        from condsel.selection.method.prune import prune_members

        if self.members is not None:
            order = list(self.members)
            if any(m not in table.logits for m in order) or len(set(order)) != len(order) or len(order) < 2:
                raise ValueError(f"learned cascade members {self.members} must be at least two distinct models of the table ({sorted(table.logits)})")
        else:
            order, self.dropped_ = prune_members(table)
            if len(order) < 2:
                order = table.models
        self.members_ = order
        self.gflops_ = {m: float(table.gflops[m]) for m in order}
        outputs = member_outputs(table)
        losses = np.stack([outputs.stats(order[: k + 1]).loss for k in range(len(order))], axis=1)
        best = prefix_targets(losses, np.cumsum([self.gflops_[m] for m in order]), self.alpha)
        stages = len(order) - 1
        X = np.vstack(self._table_stage_features(table))
        stop = np.concatenate([best <= k for k in range(stages)])
        self.model_ = Selector(hidden=tuple(self.hidden), epochs=self.epochs, lr=self.lr, seed=self.seed)
        self.model_.fit(X, np.eye(2, dtype=np.float32)[stop.astype(int)])
        self.overhead_gflops_ = stages * float(self.model_.gflops())  # at most one call per stage: an upper bound

    def _stage_features(self, outputs: MemberOutputs, stages: int) -> Iterator[np.ndarray]:
        """The stopping features of stages 0, ..., ``stages`` - 1, one stage at a time (two fused prefixes held at once)."""
        previous = None
        for k in range(stages):
            fused = outputs.fuse(self.members_[: k + 1])
            yield stage_features(fused, fused if previous is None else previous, outputs.probs(self.members_[k]), k, len(self.members_) - 1, self.multilabel_)
            previous = fused

    def _table_stage_features(self, table: PredictionTable) -> list[np.ndarray]:
        """Every stage's stopping features on ``table``'s samples.

        They read no labels, so they are made once per member order on the
        root table and shared by every fold's fit and held-out fold (on an
        HVU-sized table each stage's cost a pass over every score).
        """
        def make(root: PredictionTable) -> list[np.ndarray]:
            parts = [list(self._stage_features(part, len(self.members_) - 1)) for part in member_outputs(root).row_parts(self.members_)]
            return [np.concatenate(stage) for stage in zip(*parts)]

        return table.per_sample("stop_features", (tuple(self.members_), self.multilabel_), make)

    def _prepare(self, table: PredictionTable):
        table = super()._prepare(table)
        p_stop = np.stack([self.model_.predict_proba(x)[:, 1] for x in self._table_stage_features(table)], axis=1)
        return member_outputs(table), p_stop

    def _stages(self, p_stop: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Per sample, the stage it stops at and (N, K) which members ran."""
        stops = np.hstack([p_stop > threshold, np.ones((len(p_stop), 1), dtype=bool)])
        stage = stops.argmax(axis=1)
        return stage, np.arange(len(self.members_))[None, :] <= stage[:, None]

    def _route(self, prepared, threshold: float) -> Routing:
        outputs, p_stop = prepared  # fused prefixes are made on demand (shared, see member_outputs)
        stage, ran = self._stages(p_stop, threshold)
        return Routing(ran, gather(lambda j, rows: outputs.fuse(self.members_[: j + 1], rows=rows), stage), self.routed_gflops(ran))

    def _outcomes(self, prepared, thresholds: np.ndarray) -> Outcomes:
        outputs, p_stop = prepared
        stages, gflops = [], []
        for t in thresholds:
            stage, ran = self._stages(p_stop, float(t))
            stages.append(stage)
            gflops.append(self.routed_gflops(ran))
        return Outcomes(np.stack(gflops), np.stack(stages), [outputs.stats(self.members_[: j + 1]) for j in range(len(self.members_))])

    def _next(self, outputs: dict[str, np.ndarray], threshold: float, video: str | None) -> list[str]:
        k = len(outputs)
        if set(outputs) != set(self.members_[:k]):
            raise ValueError(f"this cascade runs {self.members_} in order; got outputs for {sorted(outputs)}")
        if k == 0:
            return [self.members_[0]]
        if k == len(self.members_):
            return []
        *_, features = self._stage_features(MemberOutputs(outputs, self.multilabel_), k)
        p_stop = self.model_.predict_proba(features)[0, 1]
        return [] if p_stop > threshold else [self.members_[k]]

    def _final(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        k = len(outputs)
        if set(outputs) != set(self.members_[:k]):
            raise ValueError(f"this cascade runs {self.members_} in order; got outputs for {sorted(outputs)}")
        return MemberOutputs(outputs, self.multilabel_).fuse(self.members_[:k])

    def _fitted_state(self, directory: Path) -> dict:
        self.model_.save(directory / "stop_model.pt")
        return {"stop_model": "stop_model.pt"}

    def _restore(self, fitted: dict, directory: Path) -> None:
        self.model_ = Selector.load(directory / fitted["stop_model"])
