"""Static choices as a policy: every video runs one member or fused subset, or a seeded mix of two of them.

A static choice spends the same on every video. Mixing two at random reaches
any cost between theirs, on the line joining their values, so the upper
hull of the static choices is a curve no selection policy may fall below.
As a policy, the nested recommended front can pick it at any budget
(:mod:`condsel.selection.evaluation.recommend`), like every other one, on
training folds only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from condsel._argtypes import nonnegative_int, positive_int
from condsel.selection.data.table import PredictionTable
from condsel.selection.method.curves import upper_hull
from condsel.selection.method.fusion import MemberOutputs, gather, member_outputs
from condsel.selection.method.policies.base import Outcomes, Policy, Routing, budget_thresholds, cost_scale, log_budget, neighbour_mix, video_draw
from condsel.selection.method.static import static_choices


class StaticPolicy(Policy):
    """Runs the same member or fused subset (mean of probabilities) on every video, or mixes two neighbours of the hull.

    Parameters
    ----------
    max_size : int
        Largest fused subset considered.
    seed : int
        Salt of the per-video draw that mixes two choices.

    Notes
    -----
    Fitting keeps the upper hull of the static choices by training cost and
    value (top-1, or minus the mean fused loss for multi-label, which mixes
    linearly). ``threshold`` t is the budget lo (hi / lo)^t of
    :func:`~condsel.selection.method.policies.base.log_budget`. Between hull
    choices a and b (cost c_a <= budget < c_b) a video runs b when its draw
    (a hash of its name, :func:`~condsel.selection.method.policies.base.video_draw`)
    is below (budget - c_a) / (c_b - c_a): the mean cost meets the budget in
    expectation, and a video gets the same choice offline and online.
    """

    name = "static"
    _ranges = {"max_size": positive_int, "seed": nonnegative_int}

    def __init__(self, max_size: int = 3, seed: int = 0) -> None:
        self.max_size = max_size
        self.seed = seed

    def _fit(self, table: PredictionTable) -> None:
        choices = static_choices(table, self.max_size, exact=False)
        hull_costs, hull_values = upper_hull(choices.gflops, choices.values)
        self.hull_ = []
        for c, v in zip(hull_costs, hull_values):
            i = int(np.flatnonzero((choices.gflops == c) & (choices.values == v))[0])
            self.hull_.append({"members": list(choices.members[i]), "gflops": float(c)})
        self.cost_scale_ = cost_scale(table)
        used = {m for h in self.hull_ for m in h["members"]}
        self.members_ = sorted(used, key=lambda m: (table.gflops[m], m))
        self.gflops_ = {m: float(table.gflops[m]) for m in self.members_}
        self.overhead_gflops_ = 0.0

    def _mix(self, threshold: float) -> tuple[int, int, float]:
        """The hull choices a <= b around the threshold's budget, and the share of videos that run b."""
        return neighbour_mix(np.array([h["gflops"] for h in self.hull_]), log_budget(threshold, self.cost_scale_))

    def _picks(self, draws: np.ndarray, threshold: float) -> np.ndarray:
        a, b, share = self._mix(threshold)
        return np.where(draws < share, b, a)

    def _runs(self) -> np.ndarray:
        """(hull choices, K) bool: the members each choice runs."""
        return np.array([[m in h["members"] for m in self.members_] for h in self.hull_])

    def _settings(self, threshold: float) -> dict:
        a, b, share = self._mix(threshold)
        return {"mix": [{"members": self.hull_[a]["members"], "share": 1.0 - share}] + ([{"members": self.hull_[b]["members"], "share": share}] if b != a else [])}

    def _sweep_thresholds(self) -> np.ndarray:
        return np.union1d(np.linspace(0.0, 1.0, 51), budget_thresholds(np.array([h["gflops"] for h in self.hull_]), self.cost_scale_))

    def _prepare(self, table: PredictionTable):
        table = super()._prepare(table)
        return member_outputs(table), video_draw(table.names, self.seed)

    def _ran_at(self, prepared, threshold: float) -> np.ndarray:
        return self._runs()[self._picks(prepared[1], threshold)]

    def _route(self, prepared, threshold: float) -> Routing:
        outputs, draws = prepared
        picks = self._picks(draws, threshold)
        ran = self._runs()[picks]
        return Routing(ran, gather(lambda h, rows: outputs.fuse(self.hull_[h]["members"], rows=rows), picks), self.routed_gflops(ran))

    def _outcomes(self, prepared, thresholds: np.ndarray) -> Outcomes:
        outputs, draws = prepared
        picks = np.stack([self._picks(draws, float(t)) for t in thresholds])  # (T, N)
        return Outcomes(self.routed_gflops(self._runs()[picks]), picks, [outputs.stats(h["members"]) for h in self.hull_])

    def _next(self, outputs: dict[str, np.ndarray], threshold: float, video: str | None) -> list[str]:
        if outputs:
            return []  # a static choice runs its members at once
        a, b, share = self._mix(threshold)
        if b != a and video is None:
            raise ValueError(f"at threshold {threshold} this static policy mixes two choices per video; name the video (video=...)")
        pick = a if b == a else int(self._picks(video_draw([video], self.seed), threshold)[0])
        return list(self.hull_[pick]["members"])

    def _final(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return MemberOutputs(outputs, self.multilabel_).fuse(sorted(outputs))

    def _fitted_state(self, directory: Path) -> dict:
        return {"hull": self.hull_, "cost_scale": self.cost_scale_}

    def _restore(self, fitted: dict, directory: Path) -> None:
        self.hull_ = [{"members": [str(m) for m in h["members"]], "gflops": float(h["gflops"])} for h in fitted["hull"]]
        self.cost_scale_ = [float(x) for x in fitted["cost_scale"]]
        if not self.hull_:
            raise ValueError("empty hull")
