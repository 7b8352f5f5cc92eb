"""The paper's selector as a policy: the backbone always runs, an MLP on its outputs picks one member."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from condsel._argtypes import nonnegative_float, nonnegative_int, positive_float, positive_int
from condsel.errors import CondselError
from condsel.selection.method.curves import choose_models
from condsel.selection.method.affinity import affinity_targets, normalized_costs, pool_order
from condsel.selection.method.fusion import gather, member_outputs, probabilities
from condsel.selection.method.policies.base import Outcomes, Policy, Routing
from condsel.selection.method.network import Selector, selector_inputs
from condsel.selection.data.table import PredictionTable


class SelectorPolicy(Policy):
    """The paper's selector (Eq. 1-2, §3.4): the backbone always runs, an MLP on its outputs picks one member.

    ``backbone`` names the member that always runs; fitting needs one. The
    evaluation engine chooses it on training folds when the user does not
    (:mod:`condsel.selection.evaluation.backbone`) and passes it down. The
    final scores are those of the chosen member alone, as in the paper.
    """

    name = "selector"
    _tuple_params = ("hidden", "milestones")
    _ranges = {"alpha": nonnegative_float, "temperature": positive_float, "hidden": positive_int, "epochs": positive_int,
               "lr": positive_float, "milestones": nonnegative_int, "batch_size": positive_int, "seed": nonnegative_int}

    def __init__(
        self,
        backbone: str | None = None,
        alpha: float = 0.5,
        temperature: float | None = None,
        selector_input: str = "sorted",
        hidden: tuple[int, ...] = (256,),
        epochs: int = 5,
        lr: float = 1e-3,
        milestones: tuple[int, ...] = (2, 4),
        batch_size: int | None = None,
        seed: int = 0,
    ) -> None:
        self.backbone = backbone
        self.alpha = alpha
        self.temperature = temperature
        self.selector_input = selector_input
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.milestones = milestones
        self.batch_size = batch_size
        self.seed = seed

    def network(self, multilabel: bool) -> Selector:
        """The unfitted selector MLP these hyperparameters describe (the one place it is built)."""
        return Selector(
            hidden=tuple(self.hidden), epochs=self.epochs, lr=self.lr, milestones=tuple(self.milestones), batch_size=self.batch_size,
            seed=self.seed, inputs=self.selector_input, multilabel=multilabel,
        )

    def _backbone(self, table: PredictionTable) -> str:
        if self.backbone is None:
            raise CondselError(
                f"{type(self).__name__} needs a backbone; name one, or let condsel.evaluate_policies choose it on training folds"
            )
        return self.backbone

    def _fit(self, table: PredictionTable) -> None:
        self.members_ = pool_order(table.models, self._backbone(table))
        self.gflops_ = {m: float(table.gflops[m]) for m in self.members_}
        self.selector_ = self.network(table.multilabel)
        self.selector_.fit(self._features(table), self.affinity(table, self.members_))
        self.overhead_gflops_ = float(self.selector_.gflops())

    def affinity(self, table: PredictionTable, order: list[str]) -> np.ndarray:
        """Eq. 2's (N, K) affinity labels of ``table``'s samples over the members in ``order`` (the backbone first)."""
        outputs = member_outputs(table)
        losses = np.stack([outputs.member_loss(m) for m in order], axis=1)
        return affinity_targets(losses, normalized_costs(np.array([table.gflops[m] for m in order])), self.alpha, self.temperature)

    def confidences(self, table: PredictionTable) -> np.ndarray:
        """P(choice k | x), (N, K), for every sample of ``table`` (its labels are not read)."""
        self._check_fitted()
        return self.selector_.predict_proba(self._features(table))

    def _prepare(self, table: PredictionTable):
        table = super()._prepare(table)
        return member_outputs(table), self.confidences(table)

    def _choice_members(self, pick: int) -> tuple[str, ...]:
        """The members whose fused probabilities a video ends with when the selector picks ``pick``."""
        return (self.members_[pick],)

    def _features(self, table: PredictionTable) -> np.ndarray:
        """The selector's input for ``table``'s samples, computed once on its root table and shared by subsets.

        A process meets every candidate backbone in turn: their inputs are
        kept within :meth:`~PredictionTable.per_sample`'s bound (all of them
        for the default ``sorted``, 10 numbers a video; only the latest for
        ``probs``, which cost as much as the logits).
        """
        key = (self.members_[0], self.selector_input, table.multilabel)
        return table.per_sample("selector_inputs", key, lambda root: [selector_inputs(root.logits[key[0]], table.multilabel, self.selector_input)])[0]

    def _confidences(self, backbone_logits: np.ndarray) -> np.ndarray:
        """P(choice k | x), (N, K), from the backbone's logits (N, C)."""
        return self.selector_.predict_proba(self.selector_.features(backbone_logits))

    def _outcomes(self, prepared, thresholds: np.ndarray) -> Outcomes:
        outputs, proba = prepared
        picks = np.stack([choose_models(proba, float(t)) for t in thresholds])  # (T, N)
        return Outcomes(self.routed_gflops(self._ran(picks)), picks, [outputs.stats(self._choice_members(k)) for k in range(proba.shape[1])])

    def _members_for(self, pick: int) -> list[str]:
        """The members still to run once the backbone has run and the selector picked choice ``pick``."""
        return [] if pick == 0 else [self.members_[pick]]

    def _ran(self, picks: np.ndarray) -> np.ndarray:
        """(..., K) bool over ``members_``: what runs when the selector picks ``picks`` (the backbone always)."""
        ran = np.zeros(picks.shape + (len(self.members_),), dtype=bool)
        ran[..., 0] = True
        np.put_along_axis(ran, picks[..., None], True, axis=-1)
        return ran

    def _ran_at(self, prepared, threshold: float) -> np.ndarray:
        return self._ran(choose_models(prepared[1], threshold))

    def _route(self, prepared, threshold: float) -> Routing:
        outputs, proba = prepared
        picks = choose_models(proba, threshold)
        ran = self._ran(picks)
        return Routing(ran, gather(lambda k, rows: outputs.fuse(self._choice_members(k), rows=rows), picks), self.routed_gflops(ran))

    def _next(self, outputs: dict[str, np.ndarray], threshold: float, video: str | None) -> list[str]:
        backbone = self.members_[0]
        if not outputs:
            return [backbone]
        if set(outputs) != {backbone}:
            return []
        return self._members_for(int(choose_models(self._confidences(outputs[backbone][None]), threshold)[0]))

    def _final(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        others = [m for m in self.members_[1:] if m in outputs]
        chosen = others[0] if others else self.members_[0]
        if chosen not in outputs:
            raise ValueError(f"the backbone {chosen!r} has not run")
        return probabilities(outputs[chosen], self.multilabel_)

    def _fitted_state(self, directory: Path) -> dict:
        self.selector_.save(directory / "selector.pt")
        return {"selector": "selector.pt"}

    def _restore(self, fitted: dict, directory: Path) -> None:
        self.selector_ = Selector.load(directory / fitted["selector"])
