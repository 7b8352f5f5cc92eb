"""Fig. 4a: the same pool, the selector reading a different backbone each time.

The backbone always runs, so a cheaper backbone lowers the floor of the curve
but may say less about which model a video needs; this compares the
cross-validated curves side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

from condsel.analysis.oof import OutOfFoldRuns
from condsel.selection.evaluation.evaluate import SelectionConfig
from condsel.selection.method.policies import SelectorPolicy


def backbone_comparison(runs: OutOfFoldRuns, selector: SelectorPolicy, backbones: Sequence[str], config: SelectionConfig) -> dict:
    """Per backbone: the curve and headline figures of ``selector`` with that backbone; the single models once."""
    if not backbones:
        raise ValueError("give at least one backbone")
    out = {"backbones": {}}
    for backbone in backbones:
        _, doc = runs(selector.clone(backbone=backbone), config)
        metric = doc.metric
        out["backbones"][backbone] = {
            "gflops": doc.models[backbone]["gflops"],
            metric: doc.models[backbone][metric],
            "selector_gflops": doc.selector_gflops,
            "selector": [{k: p[k] for k in ("threshold", "gflops", metric)} for p in doc.curves.selector],
            "headline": doc.headline.to_json(metric),
        }
    out["metric"] = metric
    out["models"] = {m: {"gflops": v["gflops"], metric: v[metric]} for m, v in doc.models.items()}
    out["alpha"] = selector.alpha
    out["protocol"] = doc.protocol
    return out
