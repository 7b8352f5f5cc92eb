"""Every policy against the same baselines: out-of-fold fronts, static choices and the recommended front.

This builds the ``policies``, ``static``, ``recommended`` and oracle sections
of ``summary.json``. All policies share the folds of the paper's selector
curve (grouped k-fold), so their points compare sample for sample.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from math import comb

import numpy as np

from condsel._io import torch_threads
from condsel.selection.method.backbone import choose_backbone
from condsel.selection.evaluation.crossfit import cross_fit, held_out_curve
from condsel.selection.evaluation.evaluate import SelectionConfig, cross_validate, fold_ids
from condsel.selection.method.policies import POLICIES, Policy
from condsel.selection.evaluation.recommend import bootstrap_interval, budget_grid, inner_curves, nested_front
from condsel.selection.evaluation.static import fusion_oracle, static_choices, static_hull, static_points
from condsel.selection.data.table import PredictionTable

log = logging.getLogger(__name__)

POLICY_NAMES = ("selector", "cascade", "learned_cascade", "ensemble_selector")
THRESHOLDS = np.linspace(0.0, 1.0, 51)


def candidates(names: list[str], backbone: str | None, selector_params: dict) -> dict[str, Callable[[], Policy]]:
    """Factories of the policies to compare, by summary name; ``cascade`` brings its stacked-fusion variant."""
    unknown = sorted(set(names) - set(POLICY_NAMES))
    if unknown:
        raise ValueError(f"unknown policies {unknown}; choose from {list(POLICY_NAMES)} or 'all'")
    makers: dict[str, Callable[[], Policy]] = {}
    for name in names:
        if name in ("selector", "ensemble_selector"):
            makers[name] = lambda cls=POLICIES[name]: cls(backbone=backbone, **selector_params)
        elif name == "cascade":
            makers["cascade"] = lambda: POLICIES["cascade"]()
            makers["cascade_stacked"] = lambda: POLICIES["cascade"](fusion="stacked")
        else:
            makers[name] = POLICIES[name]
    return makers


def parse_policies(text: str) -> list[str]:
    """``all`` or a comma-separated list of policy names (``all`` may appear among them)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    names = list(POLICY_NAMES) if "all" in names else list(dict.fromkeys(names))
    if not names:
        raise ValueError(f"no policies named; choose from {list(POLICY_NAMES)} or 'all'")
    candidates(names, None, {})  # validates
    return names


def compare_policies(
    table: PredictionTable,
    folds: np.ndarray,
    makers: dict[str, Callable[[], Policy]],
    seed: int = 0,
    bootstrap: int = 200,
    budgets: np.ndarray | None = None,
    progress: Callable[[], None] | None = None,
) -> dict:
    """The summary sections ``policies``, ``static``, ``static_hull``, ``fusion_oracle``, ``recommended`` and ``pruned``.

    With the selector among ``makers``, also ``selector_budgets`` (the paper's
    selector alone under the same nested protocol) and ``selector_backbones``
    (each outer fit's backbone).
    """
    metric = "map" if table.multilabel else "top1"
    nested_ok = len(np.unique(folds)) >= 3  # inner fits leave out two folds and need a third to train on
    if not nested_ok:
        log.warning("the recommended front needs at least 3 folds; with %d it is left empty", len(np.unique(folds)))
    fits = {}
    for name, make in makers.items():
        start = time.perf_counter()
        fits[name] = cross_fit(make, table, folds, nested=nested_ok, progress=progress)
        log.info("cross-fitted %s in %.1f s", name, time.perf_counter() - start)
    fronts = {}
    for name, f in fits.items():
        costs, values = held_out_curve(f, table, THRESHOLDS)
        fronts[name] = [{"threshold": float(t), "gflops": float(c), metric: float(v)} for t, c, v in zip(THRESHOLDS, costs, values)]
    budgets = budget_grid(table) if budgets is None else np.asarray(budgets, dtype=np.float64)
    inner = inner_curves(fits, table, THRESHOLDS) if nested_ok else {}

    def nested(names: list[str]) -> list[dict]:
        if not nested_ok:
            return []
        entries = []
        for point in nested_front({n: fits[n] for n in names}, table, budgets, THRESHOLDS, inner):
            entry = point.to_dict(table)
            entry["ci95"] = bootstrap_interval(point, table, bootstrap, seed)
            entries.append(entry)
        return entries

    recommended = nested(list(fits))
    choices = static_choices(table)
    points = static_points(choices, table.labels)
    pruned = {}
    for f in fits.values():
        for fit in f.outer.values():
            pruned.update(getattr(fit.policy, "dropped_", {}))
    out = {
        "policies": fronts,
        "static": points,
        "static_hull": static_hull(points, metric),
        "fusion_oracle": fusion_oracle(choices, table.labels),
        "recommended": recommended,
        "pruned": pruned,
    }
    if "selector" in fits:
        out["selector_budgets"] = nested(["selector"])  # the paper's selector alone, thresholds chosen the same nested way
        out["selector_backbones"] = [fits["selector"].outer[k].policy.members_[0] for k in sorted(fits["selector"].outer)]
    return out


def count_fits(names: Sequence[str], folds: int) -> int:
    """How many policy fits :func:`evaluate_policies` makes (outer folds, plus the nested pairs from 3 folds on)."""
    return len(candidates(list(names), None, {})) * (folds + (comb(folds, 2) if folds >= 3 else 0))


def evaluate_policies(
    table: PredictionTable,
    backbone: str | None = None,
    policies: str | Sequence[str] = "all",
    config: SelectionConfig | None = None,
    progress: Callable[[], None] | None = None,
) -> dict:
    """The whole ``condsel table`` procedure: every policy, the baselines and the recommended front.

    Every choice (backbone, pool order, thresholds, the policy per budget) is
    made on training folds only; held-out folds are only reported.

    Parameters
    ----------
    table : PredictionTable
        Per-model outputs with costs attached (``table.with_costs``).
    backbone : str, optional
        The paper's selector's backbone; by default the one most outer folds
        choose on their training folds.
    policies : "all" or list of str
        Among ``selector``, ``cascade``, ``learned_cascade``, ``ensemble_selector``.
    config : SelectionConfig, optional
        Folds, seed, alpha, bootstrap replicates and budgets (defaults otherwise).
    progress : callable, optional
        Called once per policy fit (see :func:`count_fits`).

    Returns
    -------
    dict
        The ``summary.json`` document: the paper's selector summary (see
        :func:`condsel.selection.evaluation.evaluate.cross_validate`) plus ``policies``,
        ``static``, ``static_hull``, ``fusion_oracle``, ``recommended``,
        ``selector_budgets``, ``pruned`` and ``backbone_chosen``.

    Examples
    --------
    >>> from condsel import load_table, default_costs, SelectionConfig
    >>> table = load_table("ucf101-split1")
    >>> table = table.with_costs(default_costs(table)[0]).select_models(["mv", "flow", "iframe"])
    >>> summary = evaluate_policies(table, policies=["cascade"], config=SelectionConfig(folds=3, bootstrap=0))
    >>> sorted(summary["policies"])
    ['cascade', 'cascade_stacked']
    """
    config = SelectionConfig() if config is None else config
    names = parse_policies(policies if isinstance(policies, str) else ",".join(policies))
    if len(table.logits) < 2:
        raise ValueError(f"a pool of one model ({next(iter(table.logits))}) has nothing to select from; give at least two")
    if backbone is not None and backbone not in table.logits:
        raise ValueError(f"backbone {backbone!r} is not among the models {sorted(table.logits)}")
    folds = fold_ids(table, config.folds, config.seed)
    selector_params = dict(alpha=config.alpha, temperature=config.temperature, selector_input=config.selector_input, seed=config.seed)
    given = backbone is not None
    with torch_threads(1):
        budgets = np.union1d(budget_grid(table), config.budgets) if config.budgets else None
        compared = compare_policies(table, folds, candidates(names, backbone, selector_params), config.seed,
                                    config.bootstrap, budgets, progress=progress)
        chosen = compared.pop("selector_backbones", None)
        if not given:  # the paper's curve uses the backbone most outer folds chose on their training folds
            chosen = chosen or [choose_backbone(table.subset(folds != k), config.selector_input, config.seed)
                                for k in range(config.folds)]
            backbone = Counter(chosen).most_common(1)[0][0]
            log.info("backbone chosen on the training folds: %s (per fold: %s)", backbone, chosen)
        summary = cross_validate(table, backbone, config)
    summary["backbone_chosen"] = not given
    summary.update(compared)
    return summary
