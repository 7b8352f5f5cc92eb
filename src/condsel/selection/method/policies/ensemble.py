"""The paper's selector over a pool whose entries may be fused subsets of members.

The backbone always runs. Each entry is a set of members to run in addition
(none, one, or a fused subset) and costs the backbone plus those members;
its prediction fuses their probabilities, with the backbone's output reused
when that fuses better on the training samples. Only entries on the training
samples' Pareto front of cost and accuracy are kept. Affinity labels (Eq. 2)
and the selector (Eq. 1, §3.4) are then exactly the paper's, over entries.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from condsel._argtypes import positive_int
from condsel.selection.method.affinity import affinity_targets, normalized_costs, pool_order
from condsel.selection.method.curves import pareto_indices
from condsel.selection.method.fusion import MemberOutputs, member_outputs
from condsel.selection.method.policies.selector import SelectorPolicy
from condsel.selection.data.table import PredictionTable


class EnsembleSelectorPolicy(SelectorPolicy):
    """A selector whose choices are the backbone alone or the backbone plus a (fused) subset of up to ``max_size`` members.

    Parameters are those of :class:`SelectorPolicy`, plus ``max_size``, the
    largest subset added to the backbone.
    """

    name = "ensemble_selector"
    _ranges = {**SelectorPolicy._ranges, "max_size": positive_int}

    def __init__(self, backbone: str | None = None, max_size: int = 3, **selector_params) -> None:
        super().__init__(backbone=backbone, **selector_params)
        self.max_size = max_size

    @classmethod
    def _param_names(cls) -> list[str]:
        return ["max_size"] + SelectorPolicy._param_names()

    def _fit(self, table: PredictionTable) -> None:
        backbone = pool_order(table.models, self._backbone(table))[0]
        outputs = member_outputs(table)
        others = [m for m in table.models if m != backbone]
        runs = [(backbone, *extra) for size in range(self.max_size + 1) for extra in itertools.combinations(others, size)]
        fused = list(dict.fromkeys(f for run in runs for f in ([run, run[1:]] if len(run) > 1 else [run])))
        value_of = {f: s.training_value(table.labels) for f, s in zip(fused, outputs.stats_of(fused))}  # one pass over the rows
        entries, costs, values = [], [], []
        for run in runs:
            value, _, fuse_members = max((value_of[f], len(f), f) for f in ([run, run[1:]] if len(run) > 1 else [run]))
            entries.append({"run": list(run), "fuse": list(fuse_members), "gflops": float(sum(table.gflops[m] for m in run))})
            costs.append(entries[-1]["gflops"])
            values.append(value)
        keep = [0] + [int(i) for i in pareto_indices(np.array(costs), np.array(values)) if i != 0]
        keep = sorted(keep, key=lambda i: costs[i])
        self.entries_ = [entries[i] for i in keep]
        losses = np.stack([outputs.stats(e["fuse"]).loss for e in self.entries_], axis=1)
        relative = normalized_costs(np.array([e["gflops"] for e in self.entries_]))
        targets = affinity_targets(losses, relative, self.alpha, self.temperature)
        self.selector_ = self.network(table.multilabel)
        self.members_ = [backbone]  # the backbone first, as _features reads it
        self.selector_.fit(self._features(table), targets)
        used = {m for e in self.entries_ for m in e["run"]}
        self.members_ = [backbone] + [m for m in table.models if m in used and m != backbone]
        self.gflops_ = {m: float(table.gflops[m]) for m in self.members_}
        self.overhead_gflops_ = float(self.selector_.gflops())

    def _choice_members(self, pick: int) -> tuple[str, ...]:
        return tuple(self.entries_[pick]["fuse"])

    def _ran(self, picks: np.ndarray) -> np.ndarray:
        column = {m: i for i, m in enumerate(self.members_)}
        runs = np.zeros((len(self.entries_), len(self.members_)), dtype=bool)
        for e, entry in enumerate(self.entries_):
            runs[e, [column[m] for m in entry["run"]]] = True
        return runs[picks]

    def _members_for(self, pick: int) -> list[str]:
        return [m for m in self.entries_[pick]["run"] if m != self.members_[0]]

    def _final(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        ran = set(outputs)
        for entry in self.entries_:
            if set(entry["run"]) == ran:
                return MemberOutputs(outputs, self.multilabel_).fuse(entry["fuse"])
        raise ValueError(f"no entry of this ensemble selector runs exactly {sorted(ran)}")

    def _fitted_state(self, directory: Path) -> dict:
        return {**super()._fitted_state(directory), "entries": self.entries_}

    def _restore(self, fitted: dict, directory: Path) -> None:
        super()._restore(fitted, directory)
        self.entries_ = [{"run": [str(m) for m in e["run"]], "fuse": [str(m) for m in e["fuse"]], "gflops": float(e["gflops"])} for e in fitted["entries"]]
