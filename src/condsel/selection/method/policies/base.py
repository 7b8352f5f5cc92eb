"""The protocol every selection policy follows.

A policy is fitted on a prediction table (training samples only) and then
answers in two ways that must agree sample by sample:

- offline, vectorised over a table: :meth:`Policy.route` gives, for one
  operating ``threshold``, which members ran, the final class scores and the
  GFLOPs spent; :meth:`Policy.sweep` traces accuracy against GFLOPs;
- online, one video at a time: :meth:`Policy.next_members` says what to run
  next given the outputs seen so far, and :meth:`Policy.final_scores` fuses
  them. ``predict`` and ``serve`` drive this loop on real models.

Every policy takes ``threshold`` in [0, 1], higher = spend more, and fits a
``default_threshold_`` on its training data. Fitted policies are saved as JSON
plus tensors (loaded with ``weights_only=True``), never as a pickle.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np

from condsel._argtypes import Range
from condsel._io import write_json
from condsel.errors import NotFittedError
from condsel.selection.method.fusion import FusedStats, member_outputs, percent
from condsel.selection.method.operating import default_point
from condsel.selection.method.metrics import column_labels, mean_average_precision, topk_correct
from condsel.selection.data.table import PredictionTable

POLICY_FILE = "policy.json"


@dataclass(frozen=True)
class Routing:
    """What a policy did on each sample of a table at one threshold.

    ``ran`` is (N, K) bool over the policy's ``members_``; ``scores`` (N, C)
    the final class probabilities; ``gflops`` (N,) the members run plus the
    policy's own overhead.
    """

    ran: np.ndarray
    scores: np.ndarray
    gflops: np.ndarray


@dataclass(frozen=True)
class Outcomes:
    """A table routed at several thresholds, as summaries: what each sample spent and which fused prediction it ended with.

    ``picks[t, n]`` indexes ``stats``, the fused predictions a sample can end
    with (on the routed table, losses included). Sample by sample this equals
    :meth:`Policy.route` (its ``gflops`` and the stats of its ``scores``), but
    no (N, C) scores are built: top-1 and losses decompose over samples, so
    every threshold costs O(N).
    """

    gflops: np.ndarray  # (T, N)
    picks: np.ndarray  # (T, N) indices into stats
    stats: list[FusedStats]

    def _take(self, per_stat: list[np.ndarray]) -> np.ndarray:
        return np.take_along_axis(np.stack(per_stat), self.picks, axis=0)

    def top1(self) -> np.ndarray:
        """(T, N) predicted class (single-label)."""
        return self._take([s.top1 for s in self.stats])

    def utility(self, labels: np.ndarray) -> np.ndarray:
        """(T, N) :meth:`FusedStats.utility`: 1 per top-1 hit, or minus the fused loss for multi-label."""
        return self._take([s.utility(labels) for s in self.stats])


def cost_scale(table: PredictionTable) -> list[float]:
    """A pool's log cost scale for :func:`log_budget`: its cheapest member, and all members together."""
    return [float(min(table.gflops.values())), float(sum(table.gflops.values()))]


def log_budget(threshold: float, cost_scale: list[float]) -> float:
    """The budget a ``threshold`` in [0, 1] stands for on a pool's log cost scale ``[lo, hi]``: lo (hi / lo)^t.

    Policies that choose among settings by cost read their threshold this
    way, so a t means the same budget for every fit on one pool.
    """
    lo, hi = cost_scale
    return lo * (hi / lo) ** float(np.clip(threshold, 0.0, 1.0))


def budget_thresholds(costs: np.ndarray, cost_scale: list[float]) -> np.ndarray:
    """The thresholds whose :func:`log_budget` are ``costs`` (clipped to [0, 1])."""
    lo, hi = cost_scale
    return np.clip(np.log(np.asarray(costs) / lo) / np.log(hi / lo), 0.0, 1.0) if hi > lo else np.zeros(len(costs))


def neighbour_mix(costs: np.ndarray, budget: float) -> tuple[int, int, float]:
    """The settings a <= b around ``budget`` among ``costs`` (ascending) and the share of videos that take b.

    Mixing a and b by each video's draw (:func:`video_draw`) spends the
    budget in expectation; below the cheapest setting every video takes it.
    """
    costs = np.asarray(costs, dtype=np.float64)
    a = int(np.searchsorted(costs, budget * (1 + 1e-9), side="right")) - 1
    if a < 0:
        return 0, 0, 0.0
    share = 0.0 if a == len(costs) - 1 else float((budget - costs[a]) / (costs[a + 1] - costs[a]))
    return (a, a + 1, share) if share > 0 else (a, a, 0.0)


def video_draw(names, seed: int) -> np.ndarray:
    """(N,) a uniform draw in [0, 1) per video, the same in every process and run (a salted BLAKE2 hash).

    Only a name's file stem is hashed, so a table's sample ``v_x_g01_c01``,
    an extracted ``videos/v_x_g01_c01.avi`` and an upload of that file draw alike.
    """
    stems = (PurePath(str(n)).stem for n in names)
    return np.array([int.from_bytes(hashlib.blake2b(f"{seed}:{s}".encode(), digest_size=8).digest(), "little") / 2.0**64 for s in stems])


def ended_counts(ran: np.ndarray, members: list[str], costs: np.ndarray) -> dict[str, np.ndarray]:
    """Per member, how many samples the routing ended at it: the costliest member that ran (the later column on equal costs).

    ``ran`` is (N, K) bool over ``members``, ``costs`` their (K,) costs. Every
    sample counts for exactly one member, so the counts sum to N: the
    selector's share (the backbone: stopped there; another member: chosen),
    a cascade's stop stage, a static subset's costliest member.
    """
    rank = np.empty(len(members), dtype=np.int64)
    rank[np.lexsort((np.arange(len(members)), np.asarray(costs)))] = np.arange(len(members))
    ended = np.where(ran, rank[None, :], -1).argmax(axis=1)
    return dict(zip(members, np.bincount(ended, minlength=len(members))))


def metric_name(table: PredictionTable) -> str:
    return "map" if table.multilabel else "top1"


def metric_value(scores: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 (%) for class indices, mAP (%) for a 0/1 label matrix."""
    if np.asarray(labels).ndim == 2:
        return 100 * mean_average_precision(scores, labels)
    return 100 * float(topk_correct(scores, labels, 1).mean())


def single_values(table: PredictionTable, members: list[str] | None = None, exact: bool = True) -> dict[str, float]:
    """Top-1 (or mAP) % of each member run alone (default: every model of the table).

    ``exact=False`` gives multi-label tables minus the mean loss instead
    (:meth:`FusedStats.training_value`), the units of choice-only estimates.
    """
    outputs = member_outputs(table)
    members = table.models if members is None else members
    if table.multilabel and exact:
        return {m: metric_value(outputs.probs(m), table.labels) for m in members}
    return {m: outputs.stats((m,)).training_value(table.labels) for m in members}


class Policy:
    """Base class: the shared protocol, persistence and the default sweep.

    Subclasses set ``name``, keep hyperparameters in ``__init__`` (no work
    there) and implement ``_fit`` (which sets ``members_``, ``gflops_`` and
    ``overhead_gflops_``), ``_prepare`` (per-table work shared by every
    threshold), ``_route``, ``_outcomes`` (the same routing as summaries,
    for many thresholds at once), ``_next``, ``_final``, ``_fitted_state``
    and ``_restore``.
    """

    name: str = ""
    _tuple_params: tuple[str, ...] = ()
    # hyperparameter -> its valid range, the same definition the CLI's flags use (condsel._argtypes); None skips the check
    _ranges: dict[str, Range] = {}

    # ---- estimator plumbing -------------------------------------------------
    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params) -> Policy:
        """Set hyperparameters by name (scikit-learn style); unknown names raise."""
        unknown = sorted(set(params) - set(self._param_names()))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no parameters {unknown}; it has {self._param_names()}")
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def clone(self, **params) -> Policy:
        """An unfitted copy with the same hyperparameters, ``params`` overriding some."""
        return type(self)(**{**self.get_params(), **params})

    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def _check_fitted(self) -> None:
        if not hasattr(self, "members_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(table) first")

    def fit(self, table: PredictionTable, choose_default: bool = True) -> Policy:
        """Fit on ``table`` (training samples only) and choose ``default_threshold_`` there.

        Parameters
        ----------
        table : PredictionTable
            Every member's outputs on the training samples, with costs.
        choose_default : bool
            False skips ``default_threshold_`` (a training sweep): cross-fits
            route at thresholds chosen elsewhere and never read it.

        Returns
        -------
        Policy
            ``self``, fitted.
        """
        self._check_params()
        missing = sorted(set(table.logits) - set(table.gflops))
        if missing:
            raise ValueError(f"no GFLOPs for models {missing}")
        if len(table.logits) < 2:
            raise ValueError(f"a pool needs at least two models to select from, got {sorted(table.logits)}")
        self.multilabel_ = table.multilabel
        self._fit(table)
        if choose_default:
            self.default_threshold_ = self._default_threshold(table)
        return self

    def _check_params(self) -> None:
        """Each hyperparameter within its range (a tuple's every entry), in the words the CLI uses for its flag."""
        for name, rule in self._ranges.items():
            value = getattr(self, name)
            if isinstance(value, (tuple, list)):
                for i, v in enumerate(value):
                    rule.check(f"{type(self).__name__}({name}[{i}])", v)
            elif value is not None:
                rule.check(f"{type(self).__name__}({name})", value)

    def _default_threshold(self, table: PredictionTable) -> float:
        """The cheapest training point that reaches the best single member, else the most accurate one."""
        best_single = max(single_values(table, self.members_).values())
        return default_point(self.sweep(table), best_single, metric_name(table))["threshold"]

    # ---- cost ------------------------------------------------------------------
    def routed_gflops(self, ran: np.ndarray) -> np.ndarray:
        """GFLOPs per sample for ``ran`` (N, K) bool over ``members_``: the members run plus the policy's own cost."""
        return ran @ np.array([self.gflops_[m] for m in self.members_]) + self.overhead_gflops_

    def video_gflops(self, members: list[str]) -> float:
        """GFLOPs of one video on which ``members`` ran, the policy's own cost included (``predict``, ``serve``)."""
        return float(self.routed_gflops(np.isin(self.members_, members)))

    # ---- offline -------------------------------------------------------------
    def route(self, table: PredictionTable, threshold: float) -> Routing:
        """Route every sample of ``table`` at ``threshold``.

        Parameters
        ----------
        table : PredictionTable
            Must hold every member in ``members_``; its labels are not read.
        threshold : float
            Operating point in [0, 1]; higher spends more.

        Returns
        -------
        Routing
            Members run, final scores and GFLOPs per sample.
        """
        self._check_fitted()
        return self._route(self._prepare(table), float(threshold))

    def sweep(self, table: PredictionTable) -> list[dict]:
        """Mean GFLOPs and top-1 (or mAP) at every operating threshold, in ascending threshold order.

        Examples
        --------
        >>> from condsel.datasets.ucf101 import load_ucf101_split1
        >>> table = load_ucf101_split1().with_costs({"mv": 44.4, "residual": 45.3, "flow": 44.4, "gen_flow": 50.1, "iframe": 287.8})
        >>> from condsel.selection.method.policies import CascadePolicy
        >>> points = CascadePolicy(members=["flow", "iframe"]).fit(table).sweep(table)
        >>> round(points[0]["gflops"], 1)  # the cheapest setting: always stop after flow
        44.4
        """
        self._check_fitted()
        prepared = self._prepare(table)
        metric = metric_name(table)
        thresholds = self._sweep_thresholds()
        outcomes = self._outcomes(prepared, thresholds)
        if table.multilabel:  # mAP needs routed scores: once per distinct routing, as held-out curves do
            labels, seen = column_labels(table.labels), {}
            for t, threshold in enumerate(thresholds):
                key = outcomes.picks[t].tobytes()
                if key not in seen:
                    seen[key] = metric_value(self._route(prepared, float(threshold)).scores, labels)
            values = [seen[outcomes.picks[t].tobytes()] for t in range(len(thresholds))]
        else:
            values = percent(outcomes.utility(table.labels).mean(axis=1), multilabel=False)
        costs = outcomes.gflops.mean(axis=1)
        return [{"threshold": float(t), "gflops": float(c), metric: float(v), **self._settings(float(t))} for t, c, v in zip(thresholds, costs, values)]

    def _ran_at(self, prepared, threshold: float) -> np.ndarray:
        """(N, K) bool over ``members_``: what :meth:`route` runs at ``threshold``.

        Policies that know it without fusing scores override this.
        """
        return self._route(prepared, threshold).ran

    def _prepare(self, table: PredictionTable):
        missing = [m for m in self.members_ if m not in table.logits]
        if missing:
            raise ValueError(f"the table lacks pool members {missing} that this {self.name} policy runs")
        return table

    def _settings(self, threshold: float) -> dict:
        """Extra per-point keys of a sweep (e.g. per-stage thresholds)."""
        return {}

    def _sweep_thresholds(self) -> np.ndarray:
        return np.linspace(0.0, 1.0, 101)

    # ---- online --------------------------------------------------------------
    def next_members(self, outputs: Mapping[str, np.ndarray], threshold: float, video: str | None = None) -> list[str]:
        """The members to run next for one video, given the logits of those run so far.

        Parameters
        ----------
        outputs : mapping of str to ndarray
            Member name -> that member's (C,) class logits for this video;
            empty at the start.
        threshold : float
            The same operating point as in :meth:`route`.
        video : str, optional
            The video's name or path, as a table names its samples. A policy
            that mixes choices at random draws from it (:func:`video_draw`),
            so a video gets the same choice online as in :meth:`route`.

        Returns
        -------
        list of str
            Members to run now (possibly several); an empty list means stop.
        """
        self._check_fitted()
        unknown = sorted(set(outputs) - set(self.members_))
        if unknown:
            raise ValueError(f"outputs for {unknown}, which are not members of this policy ({self.members_})")
        return self._next({m: np.asarray(v, dtype=np.float64).reshape(-1) for m, v in outputs.items()}, float(threshold), video)

    def final_scores(self, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """(C,) final class probabilities of one video from the outputs of the members that ran."""
        self._check_fitted()
        if not outputs:
            raise ValueError("no member has run yet")
        return self._final({m: np.asarray(v, dtype=np.float64).reshape(-1) for m, v in outputs.items()})

    # ---- persistence ---------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write ``policy.json`` (and tensor files) into ``directory``."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()}
        state = {
            "name": self.name,
            "params": params,
            "members": list(self.members_),
            "overhead_gflops": float(self.overhead_gflops_),
            "default_threshold": float(self.default_threshold_),
            "multilabel": bool(self.multilabel_),
            "gflops": {m: float(g) for m, g in self.gflops_.items()},
            "fitted": self._fitted_state(directory),
        }
        write_json(directory / POLICY_FILE, state)


def restore_common(policy: Policy, state: dict) -> None:
    policy.members_ = list(state["members"])
    policy.overhead_gflops_ = float(state["overhead_gflops"])
    policy.default_threshold_ = float(state["default_threshold"])
    policy.multilabel_ = bool(state["multilabel"])
    policy.gflops_ = {m: float(g) for m, g in state["gflops"].items()}

