"""The paper's selector summary (``summary.json``'s curves, headline figures, CIs, budgets) from the one engine.

Every figure comes from a :class:`~condsel.selection.method.policies.SelectorPolicy`
cross-fitted by :mod:`condsel.selection.evaluation.crossfit` (or fitted on a
training table and measured on a test table): single models, the selector's
threshold sweep, random selection at matched cost, the single-model hull and
the oracle, with headline figures, bootstrap CIs and budget calibration.
:class:`SelectionConfig` is the protocol only; hyperparameters live on the
policy. Accuracies are in percent; costs are GFLOPs per sample
(multiply-adds), including the backbone and the selector where they run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from condsel.errors import CondselError
from condsel.models.costs import FLOP_CONVENTION
from condsel.selection.data.table import PredictionTable
from condsel._parallel import forked_map
from condsel.selection.evaluation.crossfit import CrossFits
from condsel.selection.method.curves import (
    choice_fractions,
    choose_models,
    oracle_curve,
    random_selection,
    selection_costs,
    sweep,
    upper_hull,
)
from condsel.selection.evaluation.headline import headline_figures
from condsel.selection.method.metrics import MAP_POINTS, column_labels, mean_average_precision, topk_correct
from condsel.selection.method.fusion import member_outputs
from condsel.selection.method.policies.ensemble import EnsembleSelectorPolicy
from condsel.selection.method.policies.selector import SelectorPolicy

log = logging.getLogger(__name__)


MAP_RANDOM_SEEDS = 3  # random-selection repeats of a multi-label curve: each point needs a full ranking of N x C scores


@dataclass
class SelectionConfig:
    """The evaluation protocol: folds, seed, threshold grid, random-selection seeds, bootstrap replicates, budgets."""

    folds: int = 5
    seed: int = 0
    thresholds: int = 1001
    random_seeds: int = 10
    bootstrap: int = 200
    budgets: list[float] = field(default_factory=list)  # GFLOPs targets; empty = 3 defaults


def check_folds(table: PredictionTable, folds: int, name: str = "folds") -> tuple[np.ndarray, np.ndarray]:
    """The units folds are made of (groups, else samples) and each sample's unit; an error if they cannot fill ``folds``.

    Commands call it as soon as the table is read (``name="--folds"``), so a
    fold count too large fails before any fit, in the table's own words.
    """
    if folds < 2:
        raise ValueError(f"{name} {folds}: cross-validation needs at least 2 folds")
    keys = table.groups if table.groups is not None else table.names
    unique, inverse = np.unique(keys, return_inverse=True)
    if len(unique) < folds:
        units = f"{table.num_samples} videos" + (f" in {len(unique)} groups" if table.groups is not None else "")
        raise ValueError(f"{name} {folds}: {units} cannot fill {folds} folds; each fold needs at least one "
                         f"{'group' if table.groups is not None else 'video'}")
    return unique, inverse


def fold_ids(table: PredictionTable, folds: int, seed: int) -> np.ndarray:
    """Seeded k-fold assignment; samples of one group (e.g. a UCF101 gXX group) share a fold."""
    unique, inverse = check_folds(table, folds)
    shuffled = np.random.default_rng(seed).permutation(len(unique))
    group_fold = np.empty(len(unique), dtype=np.int64)
    group_fold[shuffled] = np.arange(len(unique)) % folds
    return group_fold[inverse]


@dataclass(frozen=True)
class OutOfFold:
    """Each sample's selector probabilities, from the fold model that held it out."""

    policy: SelectorPolicy  # the hyperparameters (unfitted prototype)
    order: list[str]  # pool order: the backbone, then the others by ascending cost
    proba: np.ndarray  # (N, K)
    selector_gflops: float
    calibration: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (train idx, train proba, test idx) per fold
    protocol: dict

    def costs(self, table: PredictionTable) -> np.ndarray:
        """(K,) GFLOPs per sample when each model is chosen: backbone and selector included."""
        return selection_costs(np.array([table.gflops[m] for m in self.order]), self.selector_gflops)

    def hits(self, table: PredictionTable) -> np.ndarray:
        """(N, K) bool: each model's top-1 is right, in pool order (single-label tables)."""
        return top_k_hits(table, self.order, 1)


def is_paper_selector(policy) -> bool:
    return isinstance(policy, SelectorPolicy) and not isinstance(policy, EnsembleSelectorPolicy)


def _paper_selector(policy) -> SelectorPolicy:
    if not is_paper_selector(policy):
        raise CondselError(f"the paper's selector summary needs a SelectorPolicy, not {type(policy).__name__}")
    return policy


def out_of_fold(fits: CrossFits, table: PredictionTable, config: SelectionConfig) -> OutOfFold:
    """The selector probabilities of every sample from the outer fit that held it out (one backbone for all folds)."""
    first = _paper_selector(fits.outer[min(fits.outer)].policy)
    order = first.members_
    if any(f.policy.members_ != order for f in fits.outer.values()):
        raise CondselError("the paper's selector curve needs one backbone for every fold; name it (--backbone)")
    proba = np.zeros((table.num_samples, len(order)), dtype=np.float32)
    calibration = []
    for k in sorted(fits.outer):
        policy = fits.outer[k].policy
        train, test = np.flatnonzero(fits.folds != k), np.flatnonzero(fits.folds == k)
        proba[test] = policy.confidences(table.subset(test))
        calibration.append((train, policy.confidences(table.subset(train)), test))
    protocol = {
        "kind": f"{len(fits.outer)}-fold cross-validation, out-of-fold predictions",
        "grouped_by": "group" if table.groups is not None else "sample",  # the document names the grouping
        "folds": len(fits.outer),
        "seed": config.seed,
        "samples": table.num_samples,
    }
    return OutOfFold(first.clone(), order, proba, first.overhead_gflops_, calibration, protocol)


def summary_of(table: PredictionTable, oof: OutOfFold, config: SelectionConfig, workers: int = 1) -> dict:
    """The ``summary.json`` dict of out-of-fold predictions (curves, baselines, CIs, budgets); multi-label curves use ``workers`` processes."""
    return build_summary(table, oof.policy, oof.order, oof.proba, oof.selector_gflops, config, oof.calibration, oof.protocol, workers=workers)


def evaluate_holdout(policy: SelectorPolicy, train: PredictionTable, test: PredictionTable, config: SelectionConfig) -> tuple[dict, SelectorPolicy]:
    """``policy`` fitted on ``train``; every curve point is measured on ``test``."""
    fitted = _paper_selector(policy).clone().fit(train)
    order = fitted.members_
    proba, train_proba = fitted.confidences(test), fitted.confidences(train)
    # calibration indices refer to a stacked train+test table
    stacked = _stack(train, test)
    n = train.num_samples
    calibration = [(np.arange(n), train_proba, n + np.arange(test.num_samples))]
    full_proba = np.vstack([train_proba, proba])
    protocol = {"kind": "train/test hold-out", "seed": config.seed, "train_samples": n, "samples": test.num_samples}
    summary = build_summary(
        stacked, fitted, order, full_proba, fitted.overhead_gflops_, config, calibration, protocol, evaluate_on=n + np.arange(test.num_samples)
    )
    return summary, fitted


def _stack(a: PredictionTable, b: PredictionTable) -> PredictionTable:
    return PredictionTable(
        names=np.r_[np.char.add("train/", a.names), np.char.add("test/", b.names)],
        labels=np.concatenate([a.labels, b.labels]),
        logits={m: np.vstack([a.logits[m], b.logits[m]]) for m in a.logits},
        gflops=a.gflops,
        class_names=a.class_names,
    )


@dataclass(frozen=True)
class SelectorCurve:
    """The selector's sweep and its baselines for one metric, in percent.

    Top-1 decomposes per sample, so it takes the fast path: per-sample hits
    swept for every threshold at once. mAP does not, so its thresholds are
    looped and every routing is scored as a whole.
    """

    metric: str
    thresholds: np.ndarray
    cost: np.ndarray  # (T,) mean GFLOPs at each threshold
    values: dict[str, np.ndarray]  # metric name -> (T,) selector values
    single: dict[str, np.ndarray]  # metric name -> (K,) single models
    random_mean: np.ndarray
    random_std: np.ndarray
    oracle_cost: np.ndarray
    oracle_value: np.ndarray
    fractions: np.ndarray | None  # (T, K) shares (fast path only)
    hits: np.ndarray | None  # (N, K) top-1 hits on the evaluated samples (fast path only)


def picked_logits(table: PredictionTable, order: list[str], picks: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(N, C) logits of member ``order[picks[n]]`` on table row ``rows[n]``, without stacking every member's.

    A multi-label member's sigmoid is monotone, so its logits rank samples
    as its probabilities do and mAP can read them directly.
    """
    out = np.empty((len(rows), table.num_classes), dtype=np.float32, order="F")  # by column, as mAP reads it
    for k in np.unique(picks):
        chosen = picks == k
        out[chosen] = table.logits[order[k]][rows[chosen]]
    return out


def top_k_hits(table: PredictionTable, order: list[str], k: int) -> np.ndarray:
    """(N, K) bool: each model's top-k is right, in ``order`` (single-label tables)."""
    return np.stack([topk_correct(table.logits[m], table.labels, k) for m in order], axis=1)


def _per_sample_hits(table: PredictionTable, order: list[str]) -> dict[str, np.ndarray]:
    """(N, K) per-sample hits for each decomposable metric."""
    return {"top1": top_k_hits(table, order, 1), "top5": top_k_hits(table, order, 5)}


def _hits_curve(table, order, p, idx, costs, oracle_costs, config) -> SelectorCurve:
    thresholds = np.linspace(0.0, 1.0, config.thresholds)
    hits = {k: v[idx] for k, v in _per_sample_hits(table, order).items()}
    names = list(hits)
    swept = sweep(p, np.stack([np.broadcast_to(costs, p.shape)] + [hits[m] for m in names]), thresholds)
    fractions = choice_fractions(p, thresholds)
    rand_mean, rand_std = random_selection(hits["top1"], fractions, config.random_seeds, config.seed)
    orc_c, orc_a = oracle_curve(hits["top1"], oracle_costs)
    return SelectorCurve(
        "top1", thresholds, swept[0], {m: 100 * swept[i + 1] for i, m in enumerate(names)},
        {m: 100 * hits[m].mean(axis=0) for m in names}, 100 * rand_mean, 100 * rand_std, orc_c, 100 * orc_a, fractions, hits["top1"],
    )


def _map_curve(table, order, p, idx, costs, selector_gflops, config, workers: int = 1) -> SelectorCurve:
    thresholds = np.linspace(0.0, 1.0, min(config.thresholds, MAP_POINTS))
    labels = column_labels(table.labels[idx])
    picks_at = [choose_models(p, t) for t in thresholds]
    rng = np.random.default_rng(config.seed)
    random_picks = [[rng.permutation(k) for k in picks_at] for _ in range(min(config.random_seeds, MAP_RANDOM_SEEDS))]
    outputs = member_outputs(table)
    best = np.stack([outputs.member_loss(m)[idx] for m in order], axis=1).argmin(axis=1)
    upgrade = np.argsort(costs[best] - costs[0], kind="stable")
    oracle_picks = []
    for n_up in np.unique(np.linspace(0, len(idx), MAP_POINTS).round().astype(int)):
        picks = np.zeros(len(idx), dtype=np.int64)
        picks[upgrade[:n_up]] = best[upgrade[:n_up]]
        oracle_picks.append(picks)
    single_picks = [np.full(len(idx), k) for k in range(len(order))]
    wanted = {picks.tobytes(): picks for picks in [*picks_at, *(q for run in random_picks for q in run), *oracle_picks, *single_picks]}
    values = forked_map(lambda picks: 100 * mean_average_precision(picked_logits(table, order, picks, idx), labels), list(wanted.values()), workers)
    seen = dict(zip(wanted, values))  # mAP once per distinct routing

    def map_of(picks: np.ndarray) -> float:
        return seen[picks.tobytes()]

    random_runs = np.array([[map_of(q) for q in run] for run in random_picks])
    return SelectorCurve(
        "map", thresholds, np.array([costs[k].mean() for k in picks_at]), {"map": np.array([map_of(k) for k in picks_at])},
        {"map": np.array([map_of(k) for k in single_picks])}, random_runs.mean(axis=0), random_runs.std(axis=0),
        np.array([costs[k].mean() - selector_gflops for k in oracle_picks]), np.array([map_of(k) for k in oracle_picks]), None, None,
    )


def build_summary(
    table: PredictionTable,
    policy: SelectorPolicy,
    order: list[str],
    proba: np.ndarray,
    selector_gflops: float,
    config: SelectionConfig,
    calibration: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    protocol: dict,
    evaluate_on: np.ndarray | None = None,
    workers: int = 1,
) -> dict:
    """The ``summary.json`` dict for any metric: top-1 (and top-5) for class labels, mAP for a 0/1 label matrix."""
    gflops = np.array([table.gflops[m] for m in order])
    costs = selection_costs(gflops, selector_gflops)
    idx = np.arange(table.num_samples) if evaluate_on is None else evaluate_on
    p = proba[idx]
    if table.multilabel:
        curve = _map_curve(table, order, p, idx, costs, selector_gflops, config, workers)
    else:
        curve = _hits_curve(table, order, p, idx, costs, selection_costs(gflops, 0.0), config)
    metric = curve.metric
    names = list(curve.values)
    hull_c, hull_a = upper_hull(gflops, curve.single[metric])
    keep = _distinct_points(curve.cost, curve.values[metric])
    figures = headline_figures((curve.cost, curve.values[metric]), (gflops, curve.single[metric]), (curve.oracle_cost, curve.oracle_value))
    oracle = zip(curve.oracle_cost, curve.oracle_value) if table.multilabel else _thin(curve.oracle_cost, curve.oracle_value)

    def selector_point(i: int) -> dict:
        point = {"threshold": float(curve.thresholds[i]), "gflops": float(curve.cost[i]), **{m: float(curve.values[m][i]) for m in names}}
        if curve.fractions is not None:
            point["share"] = {m: float(curve.fractions[i, k]) for k, m in enumerate(order)}
        return point

    loss = ", BCE" if table.multilabel else ""
    summary = {
        "flop_convention": FLOP_CONVENTION,
        "metric": metric,
        "backbone": order[0],
        "pool": order,
        "alpha": policy.alpha,
        "selector_input": policy.selector_input,
        "affinity": f"hard (Eq. 2{loss})" if policy.temperature is None else f"soft{' (BCE)' if loss else ''}, T={policy.temperature}",
        "protocol": protocol,
        "selector_gflops": selector_gflops,
        "models": {m: {"gflops": float(gflops[k]), **{n: float(curve.single[n][k]) for n in names}} for k, m in enumerate(order)},
        "curves": {
            "selector": [selector_point(i) for i in keep],
            "random": [
                {"gflops": float(curve.cost[i]), metric: float(curve.random_mean[i]), f"{metric}_std": float(curve.random_std[i])} for i in keep
            ],
            "oracle": [{"gflops": float(c), metric: float(a)} for c, a in oracle],
            "hull": [{"gflops": float(c), metric: float(a)} for c, a in zip(hull_c, hull_a)],
        },
        "summary": _named_figures(figures, order, metric),
    }
    if curve.hits is not None:
        summary["summary"]["ci95"] = _bootstrap(curve.hits, p, costs, selection_costs(gflops, 0.0), gflops, curve.thresholds, config)
        hits_all = _per_sample_hits(table, order)["top1"]

        def score(test_idx, picks):
            return 100 * hits_all[test_idx, picks].mean()
    else:

        def score(test_idx, picks):
            return 100 * mean_average_precision(picked_logits(table, order, picks, test_idx), table.labels[test_idx])
    summary["budget"] = _calibrate_budgets(costs, proba, calibration, curve.thresholds, config, gflops, score)
    return summary


def _named_figures(figures: dict, order: list[str], metric: str = "top1") -> dict:
    """Headline figures with the model named and the accuracy keys spelled after the metric."""
    out = dict(figures)
    if metric == "map":
        out["oracle_gap_closed"] = None  # a per-sample oracle does not bound mAP, so "share of its lead" has no scale
    out["best_model"] = order[out.pop("best_index")]
    out[f"best_{metric}"] = out.pop("best_accuracy")
    out[f"{metric}_gain_at_best_gflops"] = out.pop("accuracy_gain_at_best_gflops")
    return out


def _distinct_points(costs: np.ndarray, accs: np.ndarray) -> np.ndarray:
    """Indices of thresholds where the curve moves (first threshold of each run of equal points)."""
    moved = np.r_[True, (np.diff(costs) != 0) | (np.diff(accs) != 0)]
    return np.flatnonzero(moved)


def _thin(costs: np.ndarray, accs: np.ndarray, most: int = 500):
    idx = np.unique(np.linspace(0, len(costs) - 1, min(most, len(costs))).round().astype(int))
    return zip(costs[idx], accs[idx])


def _bootstrap(hits, proba, costs, oracle_costs, gflops, thresholds, config) -> dict:
    """95% percentile intervals of the headline figures, resampling samples with replacement."""
    rng = np.random.default_rng(config.seed + 1)
    n = len(hits)
    per_cost = np.broadcast_to(costs, proba.shape)
    draws: dict[str, list[float]] = {}
    for _ in range(config.bootstrap):
        w = rng.multinomial(n, np.full(n, 1.0 / n)).astype(np.float64)
        sel_c, sel_a = sweep(proba, np.stack([per_cost, hits]), thresholds, w)
        single = 100 * (w[:, None] * hits).sum(axis=0) / w.sum()
        orc_c, orc_a = oracle_curve(hits, oracle_costs, w)
        fig = headline_figures((sel_c, 100 * sel_a), (gflops, single), (orc_c, 100 * orc_a))
        for key in ("gflops_ratio_to_match_best", "accuracy_gain_at_best_gflops", "oracle_gap_closed", "best_accuracy"):
            draws.setdefault(key, []).append(np.nan if fig[key] is None else fig[key])
    names = {"accuracy_gain_at_best_gflops": "top1_gain_at_best_gflops", "best_accuracy": "best_top1"}
    out = {"replicates": config.bootstrap}
    for key, values in draws.items():
        v = np.asarray(values, dtype=np.float64)
        ok = v[np.isfinite(v)]
        out[names.get(key, key)] = {
            "low": float(np.percentile(ok, 2.5)) if ok.size else None,
            "high": float(np.percentile(ok, 97.5)) if ok.size else None,
            "defined_fraction": float(ok.size / len(v)),
        }
    return out


def threshold_for_budget(proba: np.ndarray, costs: np.ndarray, thresholds: np.ndarray, budget: float) -> float:
    """Largest threshold whose mean cost on these samples stays within ``budget`` (cost rises with t)."""
    mean_cost = sweep(proba, np.broadcast_to(costs, proba.shape), thresholds)
    within = np.flatnonzero(mean_cost <= budget + 1e-9)
    return float(thresholds[within[-1]]) if within.size else float(thresholds[0])


def _calibrate_budgets(costs, proba, calibration, thresholds, config, gflops, score) -> list[dict]:
    """Pick t on each fold's training samples for a target GFLOPs; report what its held-out samples reach.

    ``score(test_idx, picks)`` gives the accuracy of routing ``test_idx`` to ``picks``.
    """
    targets = config.budgets or [float(f * gflops.max()) for f in (0.25, 0.5, 0.75)]
    results = []
    for target in targets:
        all_idx, all_picks, per_fold = [], [], []
        for _, train_proba, test_idx in calibration:
            t = threshold_for_budget(train_proba, costs, thresholds, target)
            all_idx.append(test_idx)
            all_picks.append(choose_models(proba[test_idx], t))
            per_fold.append(t)
        idx, picks = np.concatenate(all_idx), np.concatenate(all_picks)
        results.append(
            {
                "target_gflops": float(target),
                "reached_gflops": float(costs[picks].mean()),
                "accuracy": float(score(idx, picks)),
                "thresholds": per_fold,
            }
        )
    return results
