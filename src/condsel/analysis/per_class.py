"""Fig. 3c: where the compute goes, class by class, at one operating point.

At threshold t every video is routed to one model; a class's compute is the
mean GFLOPs of its videos (backbone and selector included) and its accuracy
the top-1 of the models they were routed to. Classes the backbone already
gets right should cost little, classes it confuses should draw the big models.
"""

from __future__ import annotations

import numpy as np

from condsel.selection.method.curves import choose_models
from condsel.selection.evaluation.evaluate import OutOfFold
from condsel.selection.data.table import PredictionTable


def per_class_compute(table: PredictionTable, oof: OutOfFold, threshold: float, named: int = 5) -> dict:
    """Per class: videos, top-1 (%), mean GFLOPs/video and per-model shares; the ``named`` cheapest and costliest."""
    if table.multilabel:
        raise ValueError("per-class compute needs single-label data (one class per video)")
    hits = oof.hits(table)
    picks = choose_models(oof.proba, threshold)
    cost = oof.costs(table)[picks]
    correct = hits[np.arange(len(picks)), picks]
    names = table.class_names or [str(c) for c in range(table.num_classes)]
    classes = []
    for c in np.unique(table.labels):
        rows = table.labels == c
        classes.append(
            {
                "class": names[c],
                "videos": int(rows.sum()),
                "top1": float(100 * correct[rows].mean()),
                "gflops": float(cost[rows].mean()),
                "backbone_top1": float(100 * hits[rows, 0].mean()),
                "share": {m: float(np.mean(picks[rows] == k)) for k, m in enumerate(oof.order)},
            }
        )
    by_cost = sorted(classes, key=lambda r: (r["gflops"], r["class"]))
    return {
        "threshold": float(threshold),
        "backbone": oof.order[0],
        "pool": oof.order,
        "overall": {"top1": float(100 * correct.mean()), "gflops": float(cost.mean())},
        "classes": classes,
        "cheapest": [r["class"] for r in by_cost[:named]],
        "costliest": [r["class"] for r in by_cost[::-1][:named]],
        "protocol": oof.protocol,
    }
