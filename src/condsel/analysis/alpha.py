"""Fig. 3a: how the cost weight alpha of Eq. 2 moves the affinity labels and the selector's curve.

alpha = 0 labels each video with its lowest-loss model; as alpha grows the
cost term F_k takes over and the labels slide toward cheaper models, so the
selector learns to spend less. The label side needs no training and is exact;
the curve side is one cross-validation per alpha.
"""

from __future__ import annotations

from collections.abc import Sequence
import numpy as np

from condsel.selection.method.affinity import hard_affinity, loss_matrix, normalized_costs
from condsel.analysis.oof import OutOfFoldRuns
from condsel.selection.method.curves import selection_costs
from condsel.selection.evaluation.evaluate import SelectionConfig
from condsel.selection.method.affinity import pool_order
from condsel.selection.method.policies import SelectorPolicy
from condsel.selection.data.table import PredictionTable


def label_shift(table: PredictionTable, backbone: str, alphas: Sequence[float]) -> dict:
    """Per alpha: the share of videos whose affinity label is each model, and the labels' mean cost and loss.

    ``mean_label_gflops`` is the labelled model's own cost (what Eq. 2's F_k
    weighs); ``mean_routed_gflops`` adds the backbone, which runs anyway, as
    routing every video to its label would cost (no selector).
    """
    order = pool_order(table.models, backbone)
    gflops = np.array([table.gflops[m] for m in order])
    routed = selection_costs(gflops, 0.0)
    losses = loss_matrix([table.logits[m] for m in order], table.labels)
    costs = normalized_costs(gflops)
    rows = []
    for alpha in alphas:
        labels = hard_affinity(losses, costs, alpha).argmax(axis=1)
        rows.append(
            {
                "alpha": float(alpha),
                "share": {m: float(np.mean(labels == k)) for k, m in enumerate(order)},
                "mean_label_gflops": float(gflops[labels].mean()),
                "mean_routed_gflops": float(routed[labels].mean()),
                "mean_label_loss": float(losses[np.arange(len(labels)), labels].mean()),
            }
        )
    return {"pool": order, "gflops": {m: float(g) for m, g in zip(order, gflops)}, "labels": rows}


def alpha_sweep(runs: OutOfFoldRuns, selector: SelectorPolicy, alphas: Sequence[float], config: SelectionConfig) -> dict:
    """Label shift for every alpha, and the cross-validated curve of ``selector`` (with its backbone) trained on each alpha's labels."""
    backbone = selector.backbone
    if not alphas:
        raise ValueError("give at least one alpha")
    out = label_shift(runs.table, backbone, alphas)
    curves = []
    for alpha in alphas:
        _, doc = runs(selector.clone(alpha=float(alpha)), config)
        metric = doc.metric
        curves.append(
            {
                "alpha": float(alpha),
                "selector": [{k: p[k] for k in ("threshold", "gflops", metric)} for p in doc.curves.selector],
                "headline": {k: v for k, v in doc.headline.to_json(metric).items() if k != "ci95"},
            }
        )
    out["curves"] = curves
    out["models"] = {m: {"gflops": v["gflops"], metric: v[metric]} for m, v in doc.models.items()}
    out["metric"] = metric
    out["backbone"] = backbone
    out["protocol"] = doc.protocol
    out["selector_gflops"] = doc.selector_gflops
    return out
