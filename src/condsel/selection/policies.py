"""Selection policies: who runs which pool member on a video, behind one estimator interface.

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

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from condsel._io import atomic_path, write_json
from condsel.selection.curves import choose_models
from condsel.selection.fusion import FUSIONS, fit_stacking, fuse, probabilities
from condsel.selection.metrics import mean_average_precision, topk_correct
from condsel.selection.selector import Selector
from condsel.selection.table import PredictionTable

log = logging.getLogger(__name__)

STOP_RULES = ("maxprob", "margin")
NEVER = 2.0  # a stage threshold no confidence in [0, 1] reaches
POLICY_FILE = "policy.json"


class NotFittedError(ValueError, AttributeError):
    """A policy was used before :meth:`Policy.fit` (as scikit-learn's ``NotFittedError``)."""


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


def metric_name(table: PredictionTable) -> str:
    return "map" if table.multilabel else "top1"


def metric_value(scores: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 (%) for class indices, mAP (%) for a 0/1 label matrix."""
    if np.asarray(labels).ndim == 2:
        return 100 * mean_average_precision(scores, labels)
    return 100 * float(topk_correct(scores, labels, 1).mean())


class Policy:
    """Base class: the shared protocol, persistence and the default sweep.

    Subclasses set ``name``, keep hyperparameters in ``__init__`` (no work
    there) and implement ``_fit``, ``_route``, ``_next``, ``_fitted_state``
    and ``_restore``.
    """

    name: str = ""
    _tuple_params: tuple[str, ...] = ()

    # ---- estimator plumbing -------------------------------------------------
    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in self._param_names()}

    @classmethod
    def _param_names(cls) -> list[str]:
        import inspect

        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def _check_fitted(self) -> None:
        if not hasattr(self, "members_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(table) first")

    def fit(self, table: PredictionTable) -> Policy:
        """Fit on ``table`` (training samples only) and choose ``default_threshold_`` there.

        Parameters
        ----------
        table : PredictionTable
            Every member's outputs on the training samples, with costs.

        Returns
        -------
        Policy
            ``self``, fitted.
        """
        missing = sorted(set(table.logits) - set(table.gflops))
        if missing:
            raise ValueError(f"no GFLOPs for models {missing}")
        if len(table.logits) < 2:
            raise ValueError(f"a pool needs at least two models to select from, got {sorted(table.logits)}")
        self.multilabel_ = table.multilabel
        self._fit(table)
        self.default_threshold_ = self._default_threshold(table)
        return self

    def _default_threshold(self, table: PredictionTable) -> float:
        """The cheapest training point that reaches the best single member, else the most accurate one."""
        metric = metric_name(table)
        points = self.sweep(table)
        best_single = max(metric_value(probabilities(table.logits[m], table.multilabel), table.labels) for m in self.members_)
        reaching = [p for p in points if p[metric] >= best_single - 1e-9]
        if reaching:
            return min(reaching, key=lambda p: (p["gflops"], p["threshold"]))["threshold"]
        return max(points, key=lambda p: (p[metric], -p["gflops"]))["threshold"]

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
        >>> points = CascadePolicy(members=["flow", "iframe"]).fit(table).sweep(table)
        >>> sorted(points[0])[:3]
        ['gflops', 'stage_thresholds', 'threshold']
        """
        self._check_fitted()
        prepared = self._prepare(table)
        metric = metric_name(table)
        points = []
        for t in self._sweep_thresholds():
            r = self._route(prepared, float(t))
            points.append({"threshold": float(t), "gflops": float(r.gflops.mean()), metric: metric_value(r.scores, table.labels), **self._settings(float(t))})
        return points

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
    def next_members(self, outputs: Mapping[str, np.ndarray], threshold: float) -> list[str]:
        """The members to run next for one video, given the logits of those run so far.

        Parameters
        ----------
        outputs : mapping of str to ndarray
            Member name -> that member's (C,) class logits for this video;
            empty at the start.
        threshold : float
            The same operating point as in :meth:`route`.

        Returns
        -------
        list of str
            Members to run now (possibly several); an empty list means stop.
        """
        self._check_fitted()
        unknown = sorted(set(outputs) - set(self.members_))
        if unknown:
            raise ValueError(f"outputs for {unknown}, which are not members of this policy ({self.members_})")
        return self._next({m: np.asarray(v, dtype=np.float64).reshape(-1) for m, v in outputs.items()}, float(threshold))

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


def _restore_common(policy: Policy, state: dict) -> None:
    policy.members_ = list(state["members"])
    policy.overhead_gflops_ = float(state["overhead_gflops"])
    policy.default_threshold_ = float(state["default_threshold"])
    policy.multilabel_ = bool(state["multilabel"])
    policy.gflops_ = {m: float(g) for m, g in state["gflops"].items()}


def load_policy(directory: str | Path) -> Policy:
    """Load a policy saved with :meth:`Policy.save`.

    Parameters
    ----------
    directory : path
        Holds ``policy.json`` and the policy's tensor files.

    Returns
    -------
    Policy
        The fitted policy.
    """
    path = Path(directory) / POLICY_FILE
    try:
        state = json.loads(path.read_text())
        cls = POLICIES[state["name"]]
        params = state["params"]
    except FileNotFoundError as e:
        raise ValueError(f"{path}: no such file") from e
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a condsel policy file: {e}") from e
    try:
        policy = cls(**{k: tuple(v) if isinstance(v, list) and k in cls._tuple_params else v for k, v in params.items()})
        _restore_common(policy, state)
        policy._restore(state["fitted"], Path(directory))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: malformed {state['name']} policy: {e}") from e
    return policy


# ---------------------------------------------------------------------------
class SelectorPolicy(Policy):
    """The paper's selector (Eq. 1-2, §3.4): the backbone always runs, an MLP on its outputs picks one member.

    With ``backbone=None`` the backbone is the member whose selector curve is
    best on the training samples (see :meth:`_choose_backbone`). The final
    scores are those of the chosen member alone, as in the paper.
    """

    name = "selector"
    _tuple_params = ("hidden",)

    def __init__(
        self,
        backbone: str | None = None,
        alpha: float = 0.5,
        temperature: float | None = None,
        selector_input: str = "sorted",
        hidden: tuple[int, ...] = (256,),
        epochs: int = 5,
        lr: float = 1e-3,
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
        self.batch_size = batch_size
        self.seed = seed

    def _config(self):
        from condsel.selection.evaluate import SelectionConfig

        return SelectionConfig(
            alpha=self.alpha, temperature=self.temperature, selector_input=self.selector_input, hidden=tuple(self.hidden),
            epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, seed=self.seed,
        )

    def _fit(self, table: PredictionTable) -> None:
        from condsel.selection.evaluate import fit_selector, pool_order

        backbone = self.backbone if self.backbone is not None else self._choose_backbone(table)
        self.members_ = pool_order(table, backbone)
        self.gflops_ = {m: float(table.gflops[m]) for m in self.members_}
        self.selector_ = fit_selector(table, self.members_, self._config())
        self.overhead_gflops_ = float(self.selector_.gflops())

    def _choose_backbone(self, table: PredictionTable) -> str:
        from condsel.selection.backbone import choose_backbone

        return choose_backbone(table, self._config())

    def _prepare(self, table: PredictionTable):
        table = super()._prepare(table)
        logits = np.stack([table.logits[m] for m in self.members_])  # (K, N, C)
        proba = self.selector_.predict_proba(self.selector_.features(table.logits[self.members_[0]]))
        return logits, proba

    def _route(self, prepared, threshold: float) -> Routing:
        logits, proba = prepared
        n = proba.shape[0]
        picks = choose_models(proba, threshold)
        ran = np.zeros(proba.shape, dtype=bool)
        ran[:, 0] = True
        ran[np.arange(n), picks] = True
        costs = np.array([self.gflops_[m] for m in self.members_])
        scores = probabilities(logits[picks, np.arange(n)], self.multilabel_)
        return Routing(ran, scores, ran @ costs + self.overhead_gflops_)

    def _next(self, outputs: dict[str, np.ndarray], threshold: float) -> list[str]:
        backbone = self.members_[0]
        if not outputs:
            return [backbone]
        if set(outputs) != {backbone}:
            return []
        proba = self.selector_.predict_proba(self.selector_.features(outputs[backbone][None]))
        pick = int(choose_models(proba, threshold)[0])
        return [] if pick == 0 else [self.members_[pick]]

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


# ---------------------------------------------------------------------------
def stage_confidence(probs: np.ndarray, multilabel: bool, rule: str) -> np.ndarray:
    """How sure a fused prediction is, in [0, 1], per sample (last axis = classes).

    Single-label: the top probability (``maxprob``) or the gap between the two
    highest (``margin``). Multi-label has no single winner: ``maxprob`` is the
    mean over classes of max(p, 1 - p), ``margin`` the least sure class's |2p - 1|.
    """
    if rule not in STOP_RULES:
        raise ValueError(f"unknown stop rule {rule!r}; choose from {STOP_RULES}")
    probs = np.asarray(probs, dtype=np.float64)
    if multilabel:
        sure = np.abs(2 * probs - 1)
        return (0.5 + 0.5 * sure).mean(axis=-1) if rule == "maxprob" else sure.min(axis=-1)
    top2 = -np.partition(-probs, 1, axis=-1)[..., :2]
    return top2[..., 0] if rule == "maxprob" else top2[..., 0] - top2[..., 1]


def stop_stages(confidence: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(N,) the first stage whose confidence reaches its threshold; the last stage if none does.

    ``confidence`` is (N, S) for the S stages with a threshold (all but the last).
    """
    passed = np.asarray(confidence) >= np.asarray(thresholds)[None, :]
    passed = np.hstack([passed, np.ones((len(passed), 1), dtype=bool)])
    return passed.argmax(axis=1)


def grid_totals(confidence: np.ndarray, values: np.ndarray, grids: list[np.ndarray]) -> np.ndarray:
    """Summed ``values`` of every threshold combination on a grid, without enumerating samples per combination.

    ``confidence`` (N, S); ``values`` (V, N, S + 1), what a sample contributes
    when it stops at each stage; ``grids`` one ascending array per thresholded
    stage. Returns (V, G_0, ..., G_{S-1}). The samples still running after
    stages < s are kept as a 0/1 matrix over the combinations so far, and the
    totals of stopping at s are one matrix product with the pass matrix of s.
    """
    v_count, n, _ = values.shape
    remaining = np.ones((1, n))
    totals = np.zeros((v_count, 1))
    for s, grid in enumerate(grids):
        passes = (confidence[:, s][None, :] >= grid[:, None]).astype(np.float64)  # (G, N)
        stop_here = np.stack([(remaining * values[v, :, s]) @ passes.T for v in range(v_count)])  # (V, P, G)
        totals = totals[:, :, None] + stop_here
        remaining = (remaining[:, None, :] * (1.0 - passes)[None]).reshape(-1, n)
        totals = totals.reshape(v_count, -1)
    last = np.stack([remaining @ values[v, :, -1] for v in range(v_count)])
    return (totals + last).reshape((v_count, *[len(g) for g in grids]))


def threshold_grid(confidence: np.ndarray, points: int) -> np.ndarray:
    """Candidate thresholds of one stage: its distinct confidences (quantiles if many), always-stop and never-stop."""
    distinct = np.unique(confidence)
    if len(distinct) > points - 2:
        distinct = np.unique(np.quantile(confidence, np.linspace(0, 1, points - 2)))
    return np.unique(np.r_[0.0, distinct, NEVER])


def pareto_indices(costs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Indices of points no cheaper-or-equal point beats, ascending cost."""
    order = np.lexsort((-values, costs))
    best = np.maximum.accumulate(values[order])
    keep = values[order] > np.r_[-np.inf, best[:-1]]
    return order[keep]


class CascadePolicy(Policy):
    """Members run in a fixed order; after each, their fused prediction stops the cascade when sure enough.

    Parameters
    ----------
    members : list of str, optional
        The order to run them in. Default: every member by ascending cost
        (order search over Pareto members is done by :mod:`condsel.selection.prune`).
    fusion : {"mean", "stacked"}
        Mean of probabilities, or per-prefix weights fitted on the training samples.
    stop : {"maxprob", "margin"}
        The fused confidence compared with each stage's threshold.
    grid : int
        Candidate thresholds per stage. Up to 3 thresholded stages the search is an
        exhaustive grid; beyond, coordinate ascent over the same grids.

    Fitting traces a front of per-stage threshold vectors on the training
    samples; ``threshold`` t in [0, 1] picks the most accurate front point whose
    training cost is within ``lo + t (hi - lo)``, lo/hi the front's cost range.
    """

    name = "cascade"

    def __init__(self, members: list[str] | None = None, fusion: str = "mean", stop: str = "maxprob", grid: int = 41) -> None:
        self.members = members
        self.fusion = fusion
        self.stop = stop
        self.grid = grid

    # fused outputs of every prefix -------------------------------------------
    def _weights(self, prefix: int) -> np.ndarray | None:
        return None if self.fusion == "mean" else np.asarray(self.weights_[prefix - 1])

    def _prefix_probs(self, logits: list[np.ndarray]) -> list[np.ndarray]:
        return [fuse(logits[:k], self.multilabel_, self._weights(k)) for k in range(1, len(logits) + 1)]

    def _fit(self, table: PredictionTable) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; choose from {FUSIONS}")
        if self.stop not in STOP_RULES:
            raise ValueError(f"unknown stop rule {self.stop!r}; choose from {STOP_RULES}")
        members = list(self.members) if self.members is not None else table.models
        unknown = [m for m in members if m not in table.logits]
        if unknown or len(set(members)) != len(members) or not members:
            raise ValueError(f"cascade members {members} must be distinct models of the table ({sorted(table.logits)})")
        self.members_ = members
        self.gflops_ = {m: float(table.gflops[m]) for m in members}
        self.overhead_gflops_ = 0.0
        logits = [table.logits[m] for m in members]
        self.weights_ = [[1.0]] + [fit_stacking(logits[:k], table.labels).tolist() for k in range(2, len(members) + 1)] if self.fusion == "stacked" else []
        probs = self._prefix_probs(logits)
        self.front_ = self._search(table, probs)

    def _utilities(self, table: PredictionTable, probs: list[np.ndarray]) -> np.ndarray:
        """(N, K) what stopping after each prefix is worth per sample: a top-1 hit, or minus the BCE for multi-label."""
        if table.multilabel:
            p = np.clip(np.stack(probs, axis=1), 1e-7, 1 - 1e-7)
            y = table.labels[:, None, :]
            return (y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=2)
        return np.stack([p.argmax(axis=1) == table.labels for p in probs], axis=1).astype(np.float64)

    def _search(self, table: PredictionTable, probs: list[np.ndarray]) -> list[dict]:
        """Per-stage threshold vectors on the training front (cost, utility), ascending cost."""
        n, k = table.num_samples, len(self.members_)
        cumulative = np.cumsum([self.gflops_[m] for m in self.members_])
        if k == 1:
            return [{"thresholds": [], "gflops": float(cumulative[0])}]
        conf = np.stack([stage_confidence(p, self.multilabel_, self.stop) for p in probs[:-1]], axis=1)
        util = self._utilities(table, probs)
        grids = [threshold_grid(conf[:, s], self.grid) for s in range(k - 1)]
        if k - 1 <= 3:
            values = np.stack([np.broadcast_to(cumulative, (n, k)), util])
            cost, value = grid_totals(conf, values, grids).reshape(2, -1) / n
            combos = np.stack(np.meshgrid(*grids, indexing="ij"), axis=-1).reshape(-1, k - 1)
        else:
            combos, cost, value = coordinate_ascent(conf, cumulative, util, grids)
        keep = pareto_indices(cost, value)
        return [{"thresholds": [float(x) for x in combos[i]], "gflops": float(cost[i])} for i in keep]

    def _setting(self, threshold: float) -> dict:
        costs = np.array([p["gflops"] for p in self.front_])
        budget = costs[0] + np.clip(threshold, 0.0, 1.0) * (costs[-1] - costs[0])
        return self.front_[int(np.flatnonzero(costs <= budget + 1e-9)[-1])]

    def _settings(self, threshold: float) -> dict:
        return {"stage_thresholds": self._setting(threshold)["thresholds"]}

    def _sweep_thresholds(self) -> np.ndarray:
        costs = np.array([p["gflops"] for p in self.front_])
        span = costs[-1] - costs[0]
        return (costs - costs[0]) / span if span > 0 else np.zeros(1)

    def _prepare(self, table: PredictionTable):
        table = super()._prepare(table)
        probs = self._prefix_probs([table.logits[m] for m in self.members_])
        conf = np.stack([stage_confidence(p, self.multilabel_, self.stop) for p in probs[:-1]], axis=1) if len(probs) > 1 else np.zeros((table.num_samples, 0))
        return np.stack(probs), conf

    def _route(self, prepared, threshold: float) -> Routing:
        probs, conf = prepared
        n, k = conf.shape[0], probs.shape[0]
        stop = stop_stages(conf, np.asarray(self._setting(threshold)["thresholds"]))
        ran = np.arange(k)[None, :] <= stop[:, None]
        costs = np.array([self.gflops_[m] for m in self.members_])
        return Routing(ran, probs[stop, np.arange(n)], ran @ costs)

    def _prefix_of(self, outputs: dict[str, np.ndarray]) -> int:
        k = len(outputs)
        if set(outputs) != set(self.members_[:k]):
            raise ValueError(f"a cascade runs {self.members_} in order; got outputs for {sorted(outputs)}")
        return k

    def _next(self, outputs: dict[str, np.ndarray], threshold: float) -> list[str]:
        k = self._prefix_of(outputs)
        if k == 0:
            return [self.members_[0]]
        if k == len(self.members_):
            return []
        thresholds = self._setting(threshold)["thresholds"]
        conf = stage_confidence(self._final(outputs), self.multilabel_, self.stop)
        return [] if conf >= thresholds[k - 1] else [self.members_[k]]

    def _final(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        k = self._prefix_of(outputs)
        return fuse([outputs[m] for m in self.members_[:k]], self.multilabel_, self._weights(k))

    def _fitted_state(self, directory: Path) -> dict:
        return {"front": self.front_, "weights": self.weights_}

    def _restore(self, fitted: dict, directory: Path) -> None:
        self.front_ = [{"thresholds": [float(x) for x in p["thresholds"]], "gflops": float(p["gflops"])} for p in fitted["front"]]
        self.weights_ = [[float(w) for w in ws] for ws in fitted["weights"]]
        if not self.front_:
            raise ValueError("empty front")


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


POLICIES: dict[str, type[Policy]] = {p.name: p for p in (SelectorPolicy, CascadePolicy)}
