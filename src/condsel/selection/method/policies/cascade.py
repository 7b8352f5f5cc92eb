"""Cascades: members run in order, the fused prediction so far stops the cascade when it is sure enough."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from condsel._argtypes import int_at_least, positive_int
from condsel.selection.method.curves import pareto_indices
from condsel.selection.method.fusion import FUSIONS, STOP_RULES, FusedStats, MemberOutputs, fit_stacking, gather, member_outputs, stacking_rows, stage_confidence, summarize_by_rows
from condsel.selection.method.policies.base import Outcomes, Policy, Routing, budget_thresholds, cost_scale, log_budget
from condsel.selection.data.table import PredictionTable

NEVER = 2.0  # a stage threshold no confidence in [0, 1] reaches


def stop_stages(confidence: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(N,) the first stage whose confidence reaches its threshold; the last stage if none does.

    ``confidence`` is (N, S) for the S stages with a threshold (all but the last).
    """
    passed = np.asarray(confidence) >= np.asarray(thresholds)[None, :]
    passed = np.hstack([passed, np.ones((len(passed), 1), dtype=bool)])
    return passed.argmax(axis=1)


def grid_totals(confidence: np.ndarray, values: np.ndarray, grids: list[np.ndarray]) -> np.ndarray:
    """Summed ``values`` of every threshold combination on a grid, in O(N + grid cells) per stage.

    ``confidence`` (N, S); ``values`` (V, N, S + 1), what a sample contributes
    when it stops at each stage; ``grids`` one ascending array per thresholded
    stage. Returns (V, G_0, ..., G_{S-1}).

    A sample passes threshold index g of stage s iff g < r_s, r_s the number of
    grid values at or below its confidence. It stops at stage j iff it fails
    every earlier stage (g_s >= r_s) and passes j (g_j < r_j): a product of
    one-dimensional steps. So each stage's total is a histogram of the samples
    over (r_0, ..., r_j) followed by cumulative sums along each axis.
    """
    v_count = values.shape[0]
    stages = confidence.shape[1]
    sizes = [len(g) for g in grids]
    reached = [np.searchsorted(grids[s], confidence[:, s], side="right") for s in range(stages)]
    out = np.zeros((v_count, *sizes))
    for j in range(stages + 1):
        axes = min(j + 1, stages)  # the r_s that decide whether a sample stops at j
        dims = [sizes[s] + 1 for s in range(axes)]
        cell = np.ravel_multi_index(reached[:axes], dims)
        for v in range(v_count):
            total = np.bincount(cell, weights=values[v, :, j], minlength=int(np.prod(dims))).reshape(dims)
            for s in range(min(j, stages)):  # failed stage s: r_s <= g_s
                total = np.cumsum(total, axis=s).take(np.arange(sizes[s]), axis=s)
            if j < stages:  # passed stage j: r_j > g_j
                total = np.flip(np.cumsum(np.flip(total, axis=j), axis=j), axis=j).take(np.arange(1, sizes[j] + 1), axis=j)
            out[v] += total.reshape(total.shape + (1,) * (stages - total.ndim))
    return out


def threshold_grid(confidence: np.ndarray, points: int) -> np.ndarray:
    """Candidate thresholds of one stage: its distinct confidences (quantiles if many), always-stop and never-stop."""
    distinct = np.unique(confidence)
    if len(distinct) > points - 2:
        distinct = np.unique(np.quantile(confidence, np.linspace(0, 1, points - 2)))
    return np.unique(np.r_[0.0, distinct, NEVER])


class CascadePolicy(Policy):
    """Members run in order; after each, their fused prediction stops the cascade when sure enough.

    Parameters
    ----------
    members : list of str, optional
        One order to run them in. Default: search the orders of every subset of
        the pruned pool (:func:`condsel.selection.method.prune.prune_members`, at most
        ``max_members``) on the training samples.
    fusion : {"mean", "stacked"}
        Mean of probabilities, or per-subset weights fitted on the training samples.
    stop : {"maxprob", "margin"}
        The fused confidence compared with each stage's threshold.
    grid : int
        Candidate thresholds per stage. Up to 3 thresholded stages (4 members)
        the search is exhaustive over the grid; beyond, coordinate ascent.
    max_members : int
        Members kept for the order search.

    Notes
    -----
    Fitting keeps the Pareto front of (order, per-stage thresholds) settings
    by training cost and accuracy. ``threshold`` t in [0, 1] is a budget on a
    log scale, lo (hi / lo)^t GFLOPs with lo the cheapest model of the table and
    hi all of them together, so a t means the same budget for every fit on
    that pool; it picks the most accurate front setting whose training cost is
    within the budget (the cheapest setting if none is). A sweep visits every
    front setting.
    """

    name = "cascade"
    _ranges = {"grid": int_at_least(2), "max_members": positive_int}

    def __init__(self, members: list[str] | None = None, fusion: str = "mean", stop: str = "maxprob", grid: int = 41, max_members: int = 4) -> None:
        self.members = members
        self.fusion = fusion
        self.stop = stop
        self.grid = grid
        self.max_members = max_members

    # fused outputs of a set of members ---------------------------------------
    def _weights(self, members: tuple[str, ...]) -> np.ndarray | None:
        if self.fusion == "mean" or len(members) == 1:
            return None
        fitted = self.weights_[subset_key(members)]
        return np.array([fitted[m] for m in members])

    def _fused(self, outputs: MemberOutputs, members: tuple[str, ...], rows: np.ndarray | None = None) -> np.ndarray:
        return outputs.fuse(members, self._weights(members), rows)

    def _fit(self, table: PredictionTable) -> None:
        from condsel.selection.method.prune import candidate_orders, prune_members

        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; choose from {FUSIONS}")
        if self.stop not in STOP_RULES:
            raise ValueError(f"unknown stop rule {self.stop!r}; choose from {STOP_RULES}")
        if self.members is not None:
            orders = [tuple(self.members)]
            unknown = [m for m in orders[0] if m not in table.logits]
            if unknown or len(set(orders[0])) != len(orders[0]) or not orders[0]:
                raise ValueError(f"cascade members {self.members} must be distinct models of the table ({sorted(table.logits)})")
        else:
            kept, self.dropped_ = prune_members(table, self.max_members)
            orders = candidate_orders(kept)
        self.multilabel_ = table.multilabel
        self.overhead_gflops_ = 0.0
        self.cost_scale_ = cost_scale(table)
        self.weights_ = {}
        if self.fusion == "stacked":
            prefixes = {tuple(sorted(o[:k])) for o in orders for k in range(2, len(o) + 1)}
            sample = table.subset(stacking_rows(table.num_samples, table.num_classes))  # read only the rows the weights are fitted on
            for subset in sorted(prefixes):
                w = fit_stacking([sample.logits[m] for m in subset], sample.labels)
                self.weights_[subset_key(subset)] = {m: float(x) for m, x in zip(subset, w)}
        outputs, cache = member_outputs(table), {}
        settings, costs, values = [], [], []
        for order in orders:
            for th, cost, value in self._search(table, order, outputs, cache):
                settings.append({"members": list(order), "thresholds": th})
                costs.append(cost)
                values.append(value)
        keep = pareto_indices(np.array(costs), np.array(values))
        self.front_ = [{**settings[i], "gflops": float(costs[i])} for i in keep]
        used = {m for p in self.front_ for m in p["members"]}
        self.members_ = list(orders[0]) if self.members is not None else sorted(used, key=lambda m: (table.gflops[m], m))
        self.gflops_ = {m: float(table.gflops[m]) for m in self.members_}

    def _prefix(self, outputs: MemberOutputs, cache: dict, members: tuple[str, ...], labels: np.ndarray) -> FusedStats:
        """The stats of the fused prediction of a set of members (made once per set and ``cache``).

        Mean fusion reads the table's shared stats; stacked fusion has this
        fit's weights, so it is fused here (its probabilities are not kept:
        a routing fuses again the stages it returns scores of). The loss
        against ``labels`` is only read to fit and to evaluate, never to route.
        """
        key = frozenset(members)
        if key not in cache:
            ordered = tuple(sorted(key))
            if self.fusion == "stacked" and len(ordered) > 1:
                weights = self._weights(ordered)
                cache[key] = summarize_by_rows(len(labels), outputs.num_classes, lambda rows: outputs.fuse(ordered, weights, rows), labels, self.multilabel_)
            else:
                cache[key] = outputs.stats(ordered)
        return cache[key]

    def _search(self, table: PredictionTable, order: tuple[str, ...], outputs: MemberOutputs, cache: dict) -> list[tuple[list[float], float, float]]:
        """Pareto (thresholds, mean cost, mean utility) of one order on the training samples.

        Utility is a sample's top-1 hit, or minus its fused loss for multi-label.
        """
        n, k = table.num_samples, len(order)
        cumulative = np.cumsum([table.gflops[m] for m in order])
        stats = [self._prefix(outputs, cache, order[: i + 1], table.labels) for i in range(k)]
        util = np.stack([s.utility(table.labels) for s in stats], axis=1)
        if k == 1:
            return [([], float(cumulative[0]), float(util.mean()))]
        conf = np.stack([s.confidence[self.stop] for s in stats[:-1]], axis=1)
        grids = [threshold_grid(conf[:, s], self.grid) for s in range(k - 1)]
        if k - 1 <= 3:
            totals = grid_totals(conf, np.stack([np.broadcast_to(cumulative, (n, k)), util]), grids)
            cost, value = totals.reshape(2, -1) / n
            combos = np.stack(np.meshgrid(*grids, indexing="ij"), axis=-1).reshape(-1, k - 1)
        else:
            combos, cost, value = coordinate_ascent(conf, cumulative, util, grids)
        return [([float(x) for x in combos[i]], float(cost[i]), float(value[i])) for i in pareto_indices(cost, value)]

    def _setting(self, threshold: float) -> dict:
        budget = log_budget(threshold, self.cost_scale_)
        costs = np.array([p["gflops"] for p in self.front_])
        within = np.flatnonzero(costs <= budget * (1 + 1e-9))
        return self.front_[int(within[-1]) if within.size else 0]

    def _settings(self, threshold: float) -> dict:
        setting = self._setting(threshold)
        return {"members": setting["members"], "stage_thresholds": setting["thresholds"]}

    def _sweep_thresholds(self) -> np.ndarray:
        return np.unique(budget_thresholds(np.array([p["gflops"] for p in self.front_]), self.cost_scale_))

    def _prepare(self, table: PredictionTable):
        table = super()._prepare(table)
        return member_outputs(table), {}, table.labels

    def _stops(self, prepared, threshold: float) -> tuple[tuple[str, ...], np.ndarray]:
        """The order run at ``threshold`` and, per sample, the stage it stops at."""
        outputs, cache, labels = prepared
        setting = self._setting(threshold)
        order = tuple(setting["members"])
        conf = [self._prefix(outputs, cache, order[:k], labels).confidence[self.stop] for k in range(1, len(order))]
        return order, stop_stages(np.stack(conf, axis=1) if conf else np.zeros((len(labels), 0)), np.asarray(setting["thresholds"]))

    def _ran(self, order: tuple[str, ...], stop: np.ndarray) -> np.ndarray:
        column = {m: i for i, m in enumerate(self.members_)}
        ran = np.zeros((len(stop), len(self.members_)), dtype=bool)
        for k, m in enumerate(order):
            ran[:, column[m]] = stop >= k
        return ran

    def _ran_at(self, prepared, threshold: float) -> np.ndarray:
        return self._ran(*self._stops(prepared, threshold))

    def _route(self, prepared, threshold: float) -> Routing:
        outputs, cache, _ = prepared
        order, stop = self._stops(prepared, threshold)

        def stage_probs(k: int, rows: np.ndarray) -> np.ndarray:
            return self._fused(outputs, tuple(sorted(order[: k + 1])), rows)

        ran = self._ran(order, stop)
        return Routing(ran, gather(stage_probs, stop), self.routed_gflops(ran))

    def _outcomes(self, prepared, thresholds: np.ndarray) -> Outcomes:
        prefixes: dict[frozenset, int] = {}  # each fused prefix met, numbered in order of appearance
        gflops, picks = [], []
        for t in thresholds:
            order, stop = self._stops(prepared, float(t))
            stage_index = np.array([prefixes.setdefault(frozenset(order[: k + 1]), len(prefixes)) for k in range(len(order))])
            gflops.append(self.routed_gflops(self._ran(order, stop)))
            picks.append(stage_index[stop])
        outputs, cache, labels = prepared
        return Outcomes(np.stack(gflops), np.stack(picks), [self._prefix(outputs, cache, tuple(key), labels) for key in prefixes])

    def _next(self, outputs: dict[str, np.ndarray], threshold: float, video: str | None) -> list[str]:
        setting = self._setting(threshold)
        order = setting["members"]
        k = len(outputs)
        if set(outputs) != set(order[:k]):
            raise ValueError(f"this cascade runs {order} in order at threshold {threshold}; got outputs for {sorted(outputs)}")
        if k == 0:
            return [order[0]]
        if k == len(order):
            return []
        conf = stage_confidence(self._final(outputs), self.multilabel_, self.stop)
        return [] if conf >= setting["thresholds"][k - 1] else [order[k]]

    def _final(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return self._fused(MemberOutputs(outputs, self.multilabel_), tuple(sorted(outputs)))

    def _fitted_state(self, directory: Path) -> dict:
        return {"front": self.front_, "weights": self.weights_, "cost_scale": self.cost_scale_}

    def _restore(self, fitted: dict, directory: Path) -> None:
        self.front_ = [
            {"members": [str(m) for m in p["members"]], "thresholds": [float(x) for x in p["thresholds"]], "gflops": float(p["gflops"])}
            for p in fitted["front"]
        ]
        self.weights_ = {str(k): {str(m): float(w) for m, w in ws.items()} for k, ws in fitted["weights"].items()}
        self.cost_scale_ = [float(x) for x in fitted["cost_scale"]]
        if not self.front_:
            raise ValueError("empty front")


def subset_key(members) -> str:
    """A JSON key for a set of members."""
    return "+".join(sorted(members))


def coordinate_ascent(conf: np.ndarray, cumulative: np.ndarray, util: np.ndarray, grids: list[np.ndarray], tradeoffs: int = 25, rounds: int = 3):
    """Threshold vectors for long cascades: for each cost weight lam, maximise utility - lam * cost one stage at a time.

    Returns every visited vector with its mean cost and utility, from which
    the caller keeps the Pareto ones.
    """
    n, k = util.shape
    span = cumulative[-1] - cumulative[0]
    visited: dict[tuple, tuple[float, float]] = {}

    def evaluate(th: np.ndarray) -> tuple[float, float]:
        key = tuple(th)
        if key not in visited:
            stop = stop_stages(conf, th)
            visited[key] = (float(cumulative[stop].mean()), float(util[np.arange(n), stop].mean()))
        return visited[key]

    for lam in np.r_[0.0, np.geomspace(1e-4, 1.0, tradeoffs - 1)] / max(span, 1e-12):
        th = np.array([g[len(g) // 2] for g in grids])
        for _ in range(rounds):
            changed = False
            for s, grid in enumerate(grids):
                scores = []
                for x in grid:
                    trial = th.copy()
                    trial[s] = x
                    c, v = evaluate(trial)
                    scores.append(v - lam * c)
                best = grid[int(np.argmax(scores))]
                changed |= best != th[s]
                th[s] = best
            if not changed:
                break
    combos = np.array(list(visited))
    cost, value = np.array(list(visited.values())).T
    return combos, cost, value
