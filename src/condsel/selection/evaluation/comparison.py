"""Every policy against the same baselines: out-of-fold fronts, static choices and the recommended front.

This builds the ``policies``, ``static``, ``recommended`` and oracle sections
of ``summary.json``. All policies share the folds of the paper's selector
curve (grouped k-fold), so their points compare sample for sample.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from condsel._io import torch_threads
from condsel.errors import CondselError
from condsel.selection.evaluation.backbone import choose_backbone
from condsel._parallel import every_core, forked_map
from condsel.selection.evaluation.crossfit import CrossFits, fit_all, held_out_curve, inner_curves
from condsel.selection.evaluation.evaluate import SelectionConfig, fold_ids, is_paper_selector, out_of_fold, summary_of
from condsel.selection.method.metrics import MAP_POINTS
from condsel.selection.method.policies import POLICIES, Policy, SelectorPolicy
from condsel.selection.evaluation.recommend import bootstrap_interval, budget_grid, nested_front
from condsel.selection.method.static import fusion_oracle, static_choices, static_hull, static_points
from condsel.selection.data.table import PredictionTable

log = logging.getLogger(__name__)

POLICY_NAMES = ("selector", "cascade", "ensemble_selector", "static", "routing")
SELECTOR_FAMILY = ("selector", "ensemble_selector")
THRESHOLDS = np.linspace(0.0, 1.0, 51)


def candidates(policies: Sequence[str | Policy], selector: SelectorPolicy | None = None) -> dict[str, Policy]:
    """Prototypes of the policies to compare, by summary name; ``cascade`` brings its stacked-fusion variant.

    A name gets the policy's defaults (``selector`` gets ``selector`` when
    given); a :class:`Policy` instance is used as it is, under its ``name``.
    """
    makers: dict[str, Policy] = {}
    for entry in policies:
        if isinstance(entry, Policy):
            makers[entry.name] = entry
        elif entry not in POLICY_NAMES:
            raise ValueError(f"unknown policies {[entry]}; choose from {list(POLICY_NAMES)} or 'all'")
        elif entry == "selector":
            makers["selector"] = selector if selector is not None else SelectorPolicy()
        elif entry == "cascade":
            makers["cascade"] = POLICIES["cascade"]()
            makers["cascade_stacked"] = POLICIES["cascade"](fusion="stacked")
        else:
            makers[entry] = POLICIES[entry]()
    return makers


def parse_policies(text: str) -> list[str]:
    """``all`` or a comma-separated list of policy names (``all`` may appear among them)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    names = list(POLICY_NAMES) if "all" in names else list(dict.fromkeys(names))
    if not names:
        raise ValueError(f"no policies named; choose from {list(POLICY_NAMES)} or 'all'")
    candidates(names)  # validates
    return names


def compare_policies(
    table: PredictionTable,
    folds: np.ndarray,
    fits: dict[str, CrossFits],
    seed: int = 0,
    bootstrap: int = 200,
    budgets: np.ndarray | None = None,
    workers: int = 1,
) -> dict:
    """The summary sections ``policies``, ``static``, ``static_hull``, ``fusion_oracle``, ``recommended`` and ``pruned``.

    ``fits`` holds each policy's cross-fits (nested from 3 folds on). With
    the selector among them, also ``selector_budgets`` (the paper's selector
    alone under the same nested protocol). Curves are evaluated by
    ``workers`` forked processes.
    """
    metric = "map" if table.multilabel else "top1"
    nested_ok = len(np.unique(folds)) >= 3  # inner fits leave out two folds and need a third to train on
    if not nested_ok:
        log.warning("the recommended front needs at least 3 folds; with %d it is left empty", len(np.unique(folds)))
    fronts = {}
    reported = np.linspace(0.0, 1.0, MAP_POINTS) if table.multilabel else THRESHOLDS  # each mAP point ranks every sample again
    for name, (costs, values) in zip(fits, forked_map(lambda name: held_out_curve(fits[name], table, reported), list(fits), workers)):
        fronts[name] = [{"threshold": float(t), "gflops": float(c), metric: float(v)} for t, c, v in zip(reported, costs, values)]
    budgets = budget_grid(table) if budgets is None else np.asarray(budgets, dtype=np.float64)
    inner = inner_curves(fits, table, THRESHOLDS, workers) if nested_ok else {}

    def nested(names: list[str]) -> list[dict]:
        if not nested_ok:
            return []
        entries = []
        for point in nested_front({n: fits[n] for n in names}, table, budgets, THRESHOLDS, inner, workers):
            entry = point.to_dict(table)
            entry["ci95"] = bootstrap_interval(point, table, bootstrap, seed)
            entries.append(entry)
        return entries

    recommended = nested(list(fits))
    choices = static_choices(table, workers=workers)
    points = static_points(choices, table.labels)
    pruned = {}
    for f in fits.values():
        for fit in f.outer.values():
            pruned.update(getattr(fit.policy, "dropped_", {}))
            pruned.update(getattr(fit.policy, "pruned_sets_", {}))
    out = {
        "policies": fronts,
        "static": points,
        "static_hull": static_hull(points, metric),
        "fusion_oracle": fusion_oracle(choices, table.labels, workers=workers),
        "recommended": recommended,
        "pruned": pruned,
    }
    if "selector" in fits:
        out["selector_budgets"] = nested(["selector"])  # the paper's selector alone, thresholds chosen the same nested way
    return out


def check_pool(table: PredictionTable, backbone: str | None) -> None:
    """A pool of at least two models, holding ``backbone`` if one is named; commands call it before printing anything."""
    if len(table.logits) < 2:
        raise ValueError(f"a pool of one model ({next(iter(table.logits))}) has nothing to select from; give at least two")
    if backbone is not None and backbone not in table.logits:
        raise ValueError(f"--backbone {backbone!r} is not among the models {sorted(table.logits)}")


def evaluate_policies(
    table: PredictionTable,
    backbone: str | None = None,
    policies: str | Sequence[str | Policy] = "all",
    config: SelectionConfig | None = None,
    progress=None,
    selector: SelectorPolicy | None = None,
    workers: int = 1,
) -> dict:
    """The whole ``condsel table`` procedure: every policy, the paper's selector summary, the baselines and the recommended front.

    One engine: every curve, the paper's selector included, comes from
    cross-fitting policies on the same folds. Every choice (backbone, pool
    order, thresholds, the policy per budget) is made on training folds
    only; held-out folds are only reported.

    Parameters
    ----------
    table : PredictionTable
        Per-model outputs with costs attached (``table.with_costs``).
    backbone : str, optional
        The selector family's backbone; by default each outer fold chooses
        one on its training folds (:mod:`condsel.selection.evaluation.backbone`)
        and the paper's curve uses the one most folds chose.
    policies : "all" or list of str or Policy
        Names among ``selector``, ``cascade``, ``ensemble_selector``,
        ``static``, or policy instances (their hyperparameters).
    config : SelectionConfig, optional
        The protocol: folds, seed, thresholds, bootstrap replicates, budgets.
    progress : tqdm-like, optional
        Its ``total`` grows by the fits planned and ``update(1)`` follows each fit.
    selector : SelectorPolicy, optional
        The paper's selector (its hyperparameters); ``SelectorPolicy()`` by default.
    workers : int
        Processes that fit in parallel; the summary is the same whatever the count.

    Returns
    -------
    dict
        The ``summary.json`` document: the paper's selector summary (see
        :func:`cross_validate`) plus ``policies``,
        ``static``, ``static_hull``, ``fusion_oracle``, ``recommended``,
        ``selector_budgets``, ``pruned`` and ``backbone_chosen``.

    Examples
    --------
    >>> from condsel import load_table, default_costs, SelectionConfig
    >>> table = load_table("ucf101-split1")
    >>> table = table.with_costs(default_costs(table)[0]).select_models(["mv", "flow", "iframe"])
    >>> summary = evaluate_policies(table, "mv", policies=["cascade"], config=SelectionConfig(folds=3, bootstrap=0))
    >>> sorted(summary["policies"])
    ['cascade', 'cascade_stacked']
    """
    config = SelectionConfig() if config is None else config
    selector = SelectorPolicy() if selector is None else selector
    if isinstance(policies, str):
        policies = parse_policies(policies)
    makers = candidates(policies, selector)
    check_pool(table, backbone)
    folds = fold_ids(table, config.folds, config.seed)
    nested = config.folds >= 3
    given = backbone is not None
    if backbone is not None:
        makers = {n: p.clone(backbone=backbone) if n in SELECTOR_FAMILY else p for n, p in makers.items()}
        selector = selector.clone(backbone=backbone)
    with torch_threads(1):
        if given:
            fits = fit_all(table, folds, {**makers, "paper": selector}, nested, progress, workers)
            paper = fits.pop("paper")
        else:
            if not nested:
                raise CondselError(f"choosing the backbone on training folds needs at least 3 folds, got {config.folds}; name one (--backbone)")
            choice = choose_backbone(lambda b: selector.clone(backbone=b), table, folds,
                                     lambda requests: fit_all(table, folds, requests, True, progress, workers), THRESHOLDS, workers)
            backbone, chosen = choice.majority, choice.chosen
            log.info("backbone chosen on the training folds: %s (per fold: %s)", backbone, [chosen[k] for k in sorted(chosen)])
            requests = {n: ({k: p.clone(backbone=b) for k, b in chosen.items()} if n in SELECTOR_FAMILY and n != "selector" else p)
                        for n, p in makers.items() if n != "selector"}
            fits = fit_all(table, folds, requests, nested, progress, workers)
            if "selector" in makers:
                fits = {n: choice.fits if n == "selector" else fits[n] for n in makers}
            paper = choice.candidates[backbone]
        budgets = np.union1d(budget_grid(table), config.budgets) if config.budgets else None
        summary = summary_of(table, out_of_fold(paper, table, config), config, workers)
        compared = compare_policies(table, folds, fits, config.seed, config.bootstrap, budgets, workers)
    summary["backbone_chosen"] = not given
    summary.update(compared)
    return summary


def cross_validate(policy: Policy, table: PredictionTable, config: SelectionConfig | None = None, workers: int | None = None) -> dict:
    """Cross-validate ``policy`` on ``table`` and return the ``summary.json`` dict, as ``condsel table`` writes it.

    The paper's selector with a backbone gets the paper's summary alone
    (curves, baselines, CIs, budgets). Any other policy (a cascade, a learned
    cascade, an ensemble selector, a static policy, or a selector without a
    backbone) is compared as ``condsel table --policies NAME`` does: its
    out-of-fold front under ``policies``, the static baselines and the nested
    recommended front, beside the paper's selector on the policy's backbone
    (chosen on the training folds where it has none).

    Parameters
    ----------
    policy : Policy
        Its hyperparameters; it is cloned for every fold.
    config : SelectionConfig, optional
        The protocol; ``SelectionConfig()`` (5 folds, seed 0) by default.
    workers : int, optional
        Processes fitting in parallel; every core by default, as the CLI.
        The summary is the same whatever the count.

    Examples
    --------
    >>> from condsel import load_table, default_costs, SelectorPolicy, SelectionConfig
    >>> table = load_table("ucf101-split1")
    >>> table = table.with_costs(default_costs(table)[0]).select_models(["mv", "iframe"])
    >>> summary = cross_validate(SelectorPolicy(backbone="mv", epochs=1), table, SelectionConfig(folds=3, bootstrap=0))
    >>> summary["pool"]
    ['mv', 'iframe']
    """
    config = SelectionConfig() if config is None else config
    workers = every_core() if workers is None else workers
    if not is_paper_selector(policy) or policy.backbone is None:
        paper = policy if is_paper_selector(policy) else None
        return evaluate_policies(table, getattr(policy, "backbone", None), [policy], config, selector=paper, workers=workers)
    folds = fold_ids(table, config.folds, config.seed)
    fits = fit_all(table, folds, {"policy": policy}, nested=False, workers=workers)["policy"]
    return summary_of(table, out_of_fold(fits, table, config), config, workers)
