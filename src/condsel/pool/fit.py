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

from condsel.analysis.operating import best_point, matching_point
from condsel.extract.store import Store, load_store
from condsel.pool.config import PoolConfig, check_weights
from condsel.pool.run_dir import point_within_budget, save_run
from condsel.report.plots import plot_operating_curve
from condsel.selection.crossfit import fit_folds, oof_sweep
from condsel.selection.evaluate import fold_ids
from condsel.selection.fusion import probabilities
from condsel.selection.policies import POLICIES, Policy, metric_name, metric_value
from condsel.selection.table import PredictionTable

log = logging.getLogger(__name__)

THRESHOLDS = np.linspace(0.0, 1.0, 101)
# what a member's description must agree on between the pool and the store that was extracted with it
IDENTITY_KEYS = ("arch", "options", "clip", "num_classes", "sha256")


@dataclass(frozen=True)
class FitSettings:
    policy: str = "selector"  # a name of condsel.selection.policies.POLICIES, or "best"
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
    return lambda: cls(**kwargs)


def _operating_point(curve: list[dict], table: PredictionTable, settings: FitSettings, fits) -> dict:
    metric = metric_name(table)
    if settings.threshold is not None:
        return oof_sweep(fits, table, np.array([settings.threshold]))[0]
    if settings.budget is not None:
        return point_within_budget(curve, settings.budget)
    best_single = max(metric_value(probabilities(table.logits[m], table.multilabel), table.labels) for m in table.logits)
    return matching_point(curve, best_single, metric) or best_point(curve, metric)


@dataclass(frozen=True)
class FitResult:
    policy: Policy
    curve: list[dict]  # out-of-fold, one point per threshold
    point: dict  # the chosen operating point, out of fold
    candidates: dict[str, dict]  # with --policy best: each policy's out-of-fold point


def fit_policy(pool: PoolConfig, table: PredictionTable, settings: FitSettings, progress: bool = False) -> FitResult:
    """Cross-validate the policy (or, for ``best``, every policy) to choose the operating point, then fit on all videos.

    ``best`` picks the policy whose out-of-fold point (at the budget, or the
    default point) is the most accurate, the cheaper on ties. That choice is
    a maximum over out-of-fold curves, so its figures are slightly optimistic.
    """
    folds = fold_ids(table, settings.folds, settings.seed)
    names = sorted(POLICIES) if settings.policy == "best" else [settings.policy]
    metric = metric_name(table)
    found = {}
    for name in names:
        log.info("cross-validating the %s policy (%d folds)", name, settings.folds)
        fits = fit_folds(_make(name, pool, settings.seed), table, folds)
        curve = oof_sweep(fits, table, THRESHOLDS)
        found[name] = (curve, _operating_point(curve, table, settings, fits))
    chosen = max(found, key=lambda n: (found[n][1][metric], -found[n][1]["gflops"]))
    curve, point = found[chosen]
    log.info("fitting the %s policy on all %d videos", chosen, table.num_samples)
    policy = _make(chosen, pool, settings.seed)().fit(table)
    return FitResult(policy, curve, point, {n: {"policy": n, **p} for n, (_, p) in found.items()})


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
        "measured_on": f"{settings.folds}-fold cross-validation, out of fold, on the store's {table.num_samples} videos",
    }
    notes = {
        "store": {"path": str(Path(store_root).resolve()), "digest": table_digest(table),
                  "identity": store.meta["identity"], "videos": int(table.num_samples)},
        "fit": {"policy": result.policy.name, "params": result.policy.get_params(), "folds": settings.folds,
                "seed": settings.seed, "budget": settings.budget, "fitted_on": "every video of the store"},
    }
    if settings.policy == "best":
        notes["best"] = {
            "candidates": list(result.candidates.values()),
            "caveat": "the policy with the most accurate out-of-fold point; a maximum over out-of-fold curves, "
                      "so its figures are slightly optimistic",
        }
    singles = {m: {"gflops": table.gflops[m], metric: metric_value(probabilities(table.logits[m], table.multilabel), table.labels)}
               for m in table.models}
    notes["single_members"] = singles
    plot_operating_curve(result.curve, singles, point, Path(out) / "calibration.png", result.policy.name,
                         title=f"{result.policy.name} policy on {Path(store_root).name}: {settings.folds}-fold CV, out of fold")
    root = save_run(out, pool, result.policy, list(table.class_names), point["threshold"], result.curve,
                    store.meta["settings"]["aggregate"], operating_point=operating_point, notes=notes)
    return root, result
