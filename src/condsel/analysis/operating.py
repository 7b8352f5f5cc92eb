"""Named operating points on a selector's threshold sweep (a summary's ``curves.selector`` list)."""

from __future__ import annotations

from condsel.selection.evaluation.document import SummaryDocument


def matching_point(curve: list[dict], target: float | None, metric: str = "top1") -> dict | None:
    """The cheapest point whose ``metric`` reaches ``target`` (e.g. the best single model's), or None."""
    reaching = [p for p in curve if target is not None and p[metric] >= target - 1e-9]
    return min(reaching, key=lambda p: (p["gflops"], p["threshold"])) if reaching else None


def best_point(curve: list[dict], metric: str = "top1") -> dict:
    """The most accurate point, the cheapest among ties."""
    return max(curve, key=lambda p: (p[metric], -p["gflops"]))


def default_operating_point(doc: SummaryDocument) -> dict:
    """Where the selector first matches the best single model, else its most accurate point."""
    curve = doc.curves.selector
    return matching_point(curve, doc.headline.best_accuracy, doc.metric) or best_point(curve, doc.metric)
