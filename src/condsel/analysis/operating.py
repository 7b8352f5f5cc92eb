"""Named operating points on a selector's threshold sweep (a summary's ``curves.selector`` list)."""

from __future__ import annotations


def matching_point(curve: list[dict], target: float | None, metric: str = "top1") -> dict | None:
    """The cheapest point whose ``metric`` reaches ``target`` (e.g. the best single model's), or None."""
    reaching = [p for p in curve if target is not None and p[metric] >= target - 1e-9]
    return min(reaching, key=lambda p: (p["gflops"], p["threshold"])) if reaching else None


def best_point(curve: list[dict], metric: str = "top1") -> dict:
    """The most accurate point, the cheapest among ties."""
    return max(curve, key=lambda p: (p[metric], -p["gflops"]))


def default_operating_point(summary: dict) -> dict:
    """Where the selector first matches the best single model, else its most accurate point."""
    metric = summary.get("metric", "top1")
    curve = summary["curves"]["selector"]
    return matching_point(curve, summary["summary"].get(f"best_{metric}"), metric) or best_point(curve, metric)
