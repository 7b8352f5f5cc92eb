"""Fit a selection policy on an extraction store of a pool, and write the run directory ``predict`` and ``serve`` load.

The policy is fitted on every video of the store. Its operating point is
chosen, and its expected GFLOPs and accuracy are measured, on out-of-fold
predictions (grouped k-fold cross-validation: each video routed by a policy
that did not train on it), never on in-sample ones, which flatter a fitted
policy. The store must have been extracted by this very pool (same members,
views and weights), so that what ``predict`` computes online is what the
policy was fitted on.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from condsel.extract.store import Store, load_store
from condsel.pool.config import PoolConfig, check_weights
from condsel.pool.run_dir import point_within_budget, save_run
from condsel.report.plots import plot_operating_curve
from condsel.selection.evaluation.crossfit import CrossFits, cross_fit, held_out_curve
from condsel.selection.evaluation.evaluate import fold_ids
from condsel.selection.method.operating import default_point
from condsel.selection.method.policies import POLICIES, Policy, metric_name, single_values
from condsel.selection.evaluation.recommend import choose, nested_front
from condsel.selection.data.table import PredictionTable

log = logging.getLogger(__name__)

THRESHOLDS = np.linspace(0.0, 1.0, 101)
# what a member's description must agree on between the pool and the store that was extracted with it
IDENTITY_KEYS = ("arch", "options", "clip", "num_classes", "sha256")


@dataclass(frozen=True)
class FitSettings:
    policy: str = "selector"  # a name of condsel.selection.method.policies.POLICIES, or "best"
    budget: float | None = None  # mean GFLOPs per video to stay within
    threshold: float | None = None  # a fixed operating point instead
    folds: int = 5
    seed: int = 0

    def __post_init__(self):
        if self.policy != "best" and self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose from {sorted(POLICIES)} or 'best'")
        if self.budget is not None and self.threshold is not None:
            raise ValueError("give a budget or a threshold, not both")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold {self.threshold} is outside [0, 1]")
        if self.policy == "best" and self.budget is None:
            raise ValueError("--policy best is the recommended policy at a budget: give --budget GFLOPS")
        if self.policy == "best" and self.folds < 3:
            raise ValueError(f"--policy best cross-validates nested (a fit without each pair of folds): it needs --folds >= 3, got {self.folds}")


def table_digest(table: PredictionTable) -> str:
    """SHA-256 of exactly what a policy is fitted on: names, labels, every member's scores and cost."""
    digest = hashlib.sha256()
    digest.update("\n".join(map(str, table.names)).encode("utf-8"))
    digest.update(np.ascontiguousarray(table.labels).tobytes())
    for m in sorted(table.logits):
        digest.update(f"{m}={table.gflops[m]!r}".encode("utf-8"))
        digest.update(np.ascontiguousarray(table.logits[m], dtype=np.float32).tobytes())
    return digest.hexdigest()


def check_store_matches(pool: PoolConfig, store: Store) -> None:
    """The store must hold whole videos scored by exactly this pool (members, views, weights)."""
    if store.meta["settings"].get("per_clip_seconds") is not None:
        raise ValueError(f"{store.root}: a per-clip store (windows of untrimmed videos); fit needs whole-video scores")
    stored = {m["name"]: m for m in store.meta["pool"]["members"]}
    if sorted(stored) != sorted(pool.names):
        raise ValueError(f"{store.root}: holds members {sorted(stored)}, but {pool.path} has {sorted(pool.names)}")
    for member in pool.members:
        mine, theirs = member.to_dict(), stored[member.name]
        for key in IDENTITY_KEYS:
            if mine[key] != theirs.get(key):
                raise ValueError(
                    f"{store.root}: member {member.name!r} was extracted with {key} = {theirs.get(key)!r}, "
                    f"but {pool.path} has {mine[key]!r}; extract again with this pool"
                )


def _make(name: str, pool: PoolConfig, seed: int):
    cls = POLICIES[name]
    params = inspect.signature(cls.__init__).parameters
    kwargs = {}
    if "backbone" in params:
        kwargs["backbone"] = pool.backbone
    if "seed" in params:
        kwargs["seed"] = seed
    return cls(**kwargs)


def _points(costs: np.ndarray, values: np.ndarray, thresholds: np.ndarray, metric: str) -> list[dict]:
    return [{"threshold": float(t), "gflops": float(c), metric: float(v)} for t, c, v in zip(thresholds, costs, values)]


def _operating_point(curve: list[dict], table: PredictionTable, settings: FitSettings, fits: CrossFits) -> dict:
    metric = metric_name(table)
    if settings.threshold is not None:
        thresholds = np.array([settings.threshold])
        return _points(*held_out_curve(fits, table, thresholds), thresholds, metric)[0]
    if settings.budget is not None:
        return point_within_budget(curve, settings.budget)
    best_single = max(single_values(table).values())
    return default_point(curve, best_single, metric)


@dataclass(frozen=True)
class FitResult:
    policy: Policy
    curve: list[dict]  # out-of-fold, one point per threshold
    point: dict  # the operating point: its threshold, and its GFLOPs and accuracy held out
    candidates: dict[str, dict]  # with --policy best: each policy's out-of-fold point at the budget
    folds: int  # the cross-validation folds used (fewer than asked when the store holds fewer videos)


def fit_policy(pool: PoolConfig, table: PredictionTable, settings: FitSettings) -> FitResult:
    """Cross-fit the policy to choose its operating point out of fold, then fit it on all videos.

    ``best`` (with a budget) is the recommended choice of
    :mod:`condsel.selection.evaluation.recommend`: the policy and threshold whose
    out-of-fold estimate is the most accurate within the budget. The figures
    it reports are those of that whole procedure measured held out (nested:
    each fold's choice made without it), so they are not flattered by the
    maximum over policies.
    """
    groups = len(np.unique(table.groups if table.groups is not None else table.names))
    if groups < settings.folds:
        needed = 3 if settings.policy == "best" else 2
        if groups < needed:
            raise ValueError(f"the store holds {groups} videos: cross-validating the operating point needs at least {needed}")
        log.warning("only %d videos: %d-fold cross-validation instead of %d", groups, groups, settings.folds)
        settings = replace(settings, folds=groups)
    folds = fold_ids(table, settings.folds, settings.seed)
    metric = metric_name(table)
    if settings.policy != "best":
        log.info("cross-fitting the %s policy (%d folds)", settings.policy, settings.folds)
        fits = cross_fit(_make(settings.policy, pool, settings.seed), table, folds, nested=False)
        curve = _points(*held_out_curve(fits, table, THRESHOLDS), THRESHOLDS, metric)
        point = _operating_point(curve, table, settings, fits)
        return FitResult(_make(settings.policy, pool, settings.seed).clone().fit(table), curve, point, {}, settings.folds)
    fits, curves = {}, {}
    for name in sorted(POLICIES):
        log.info("cross-fitting the %s policy, nested (%d folds)", name, settings.folds)
        fits[name] = cross_fit(_make(name, pool, settings.seed), table, folds, nested=True)
        curves[name] = held_out_curve(fits[name], table, THRESHOLDS)
    cheapest = min(float(c.min()) for c, _ in curves.values())
    if settings.budget < cheapest:
        raise ValueError(f"budget {settings.budget} GFLOPs is below the cheapest operating point ({cheapest:.4g} GFLOPs)")
    choice = choose(curves, THRESHOLDS, settings.budget)
    held_out = nested_front(fits, table, np.array([settings.budget]), THRESHOLDS)[0].to_dict(table)
    point = {"threshold": choice.threshold, "gflops": held_out["gflops"], metric: held_out[metric],
             "out_of_fold_estimate": {"gflops": choice.estimated_gflops, metric: choice.estimate}}
    candidates = {name: {"policy": name, **point_within_budget(_points(c, v, THRESHOLDS, metric), settings.budget)}
                  for name, (c, v) in curves.items() if float(c.min()) <= settings.budget}
    curve = _points(*curves[choice.policy], THRESHOLDS, metric)
    log.info("fitting the %s policy on all %d videos", choice.policy, table.num_samples)
    return FitResult(_make(choice.policy, pool, settings.seed).clone().fit(table), curve, point, candidates, settings.folds)


def fit_run(
    pool: PoolConfig,
    store_root: str | Path,
    out: str | Path,
    settings: FitSettings = FitSettings(),
    costs: dict[str, float] | None = None,
    random_weights: bool = False,
) -> tuple[Path, FitResult]:
    """Fit on the store and write the run directory ``out`` (see :mod:`condsel.pool.run_dir`).

    Parameters
    ----------
    pool : PoolConfig
        The pool the store was extracted with; every member needs a checkpoint
        unless ``random_weights``.
    store_root : path
        A whole-video store written by ``condsel extract`` with this pool.
    out : path
        The run directory to write.
    settings : FitSettings
        Policy, operating point (budget or threshold), folds and seed.
    costs : dict, optional
        Per-video GFLOPs overriding the counted ones.
    random_weights : bool
        Allow members without a checkpoint (latency benchmarks only).

    Returns
    -------
    path, FitResult
        The run directory and what was fitted.
    """
    check_weights(pool, random_weights)
    pool = pool.pinned()
    store = Store.open(store_root)
    check_store_matches(pool, store)
    table = load_store(store_root)
    if costs:
        table = table.with_costs({**table.gflops, **costs})
    if table.class_names is None:
        table = replace(table, class_names=[str(c) for c in range(pool.num_classes)])
    result = fit_policy(pool, table, settings)
    metric = metric_name(table)
    point = result.point
    operating_point = {
        "threshold": point["threshold"], "gflops": point["gflops"], metric: point[metric],
        "rule": ("the given threshold" if settings.threshold is not None else
                 f"the most accurate point within {settings.budget} GFLOPs" if settings.budget is not None else
                 "the cheapest point reaching the best single member, else the most accurate"),
        "measured_on": f"{result.folds}-fold cross-validation, out of fold, on the store's {table.num_samples} videos"
                       + (" (nested: each fold's choice of policy and threshold made without it)" if settings.policy == "best" else ""),
        **({"out_of_fold_estimate": point["out_of_fold_estimate"]} if "out_of_fold_estimate" in point else {}),
    }
    notes = {
        "store": {"path": str(Path(store_root).resolve()), "digest": table_digest(table),
                  "identity": store.meta["identity"], "videos": int(table.num_samples)},
        "fit": {"policy": result.policy.name, "params": result.policy.get_params(), "folds": result.folds,
                "seed": settings.seed, "budget": settings.budget, "fitted_on": "every video of the store"},
    }
    if settings.policy == "best":
        notes["best"] = {
            "candidates": list(result.candidates.values()),
            "rule": "the policy and threshold most accurate within the budget on out-of-fold curves "
                    "(condsel.selection.evaluation.recommend.choose); the operating point's figures are that choice "
                    "made and measured held out (nested cross-validation)",
        }
    singles = {m: {"gflops": table.gflops[m], metric: value} for m, value in single_values(table).items()}
    notes["single_members"] = singles
    plot_operating_curve(result.curve, singles, point, Path(out) / "calibration.png", result.policy.name,
                         title=f"{result.policy.name} policy on {Path(store_root).name}: {result.folds}-fold CV, out of fold")
    root = save_run(out, pool, result.policy, list(table.class_names), point["threshold"], result.curve,
                    store.meta["settings"]["aggregate"], operating_point=operating_point, notes=notes)
    return root, result
