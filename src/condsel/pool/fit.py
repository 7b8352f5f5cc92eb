"""Fit a selection policy on a pool's table, and describe the fit for the run directory ``predict`` and ``serve`` load.

The policy is fitted on every video of the table. Its operating point is
chosen, and its expected GFLOPs and accuracy are measured, on out-of-fold
predictions (grouped k-fold cross-validation: each video routed by a policy
that did not train on it), never on in-sample ones, which flatter a fitted
policy. This module returns data; ``condsel fit`` reads the store (which
:func:`condsel.extract.pool.check_store_matches` ties to the pool), plots the
curve and writes the run directory.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from dataclasses import dataclass, replace

import numpy as np

from condsel.pool.config import PoolConfig
from condsel.pool.run_dir import point_within_budget
from condsel.selection.evaluation.crossfit import CrossFits, cross_fit, held_out_curve
from condsel.selection.evaluation.evaluate import fold_ids
from condsel.selection.method.operating import default_point
from condsel.selection.method.policies import POLICIES, Policy, metric_name, single_values
from condsel.selection.evaluation.recommend import choose, nested_front
from condsel.selection.data.table import PredictionTable

log = logging.getLogger(__name__)

THRESHOLDS = np.linspace(0.0, 1.0, 101)


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


def describe_fit(table: PredictionTable, settings: FitSettings, result: FitResult, label: str = "GFLOPs") -> tuple[dict, dict]:
    """The run's ``operating_point`` (with the rule that chose it) and the fit's notes, as ``run.json`` records them.

    ``label`` names the unit the table's costs are in (GFLOPs, or ms from a profiled costs file).

    The caller adds the provenance of the table (for a store: its path, identity and digest).
    """
    metric = metric_name(table)
    point = result.point
    operating_point = {
        "threshold": point["threshold"], "gflops": point["gflops"], metric: point[metric],
        "rule": ("the given threshold" if settings.threshold is not None else
                 f"the most accurate point within {settings.budget} {label}" if settings.budget is not None else
                 "the cheapest point reaching the best single member, else the most accurate"),
        "measured_on": f"{result.folds}-fold cross-validation, out of fold, on the store's {table.num_samples} videos"
                       + (" (nested: each fold's choice of policy and threshold made without it)" if settings.policy == "best" else ""),
        **({"out_of_fold_estimate": point["out_of_fold_estimate"]} if "out_of_fold_estimate" in point else {}),
    }
    notes = {
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
    notes["single_members"] = {m: {"gflops": table.gflops[m], metric: value} for m, value in single_values(table).items()}
    return operating_point, notes


def in_unit(point: dict, unit: str) -> dict:
    """``point`` with its cost keys (``gflops``, and an ``out_of_fold_estimate``'s) renamed to ``unit``."""
    out = {(unit if k == "gflops" else k): v for k, v in point.items()}
    if isinstance(out.get("out_of_fold_estimate"), dict):
        out["out_of_fold_estimate"] = in_unit(out["out_of_fold_estimate"], unit)
    return out
