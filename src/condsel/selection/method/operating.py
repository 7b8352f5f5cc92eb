"""The default operating point on a threshold sweep, used when fitting a policy and when reading a summary."""

from __future__ import annotations


def matching_point(curve: list[dict], target: float | None, metric: str = "top1") -> dict | None:
    """The cheapest point whose ``metric`` reaches ``target`` (e.g. the best single model's), or None."""
    reaching = [p for p in curve if target is not None and p[metric] >= target - 1e-9]
    return min(reaching, key=lambda p: (p["gflops"], p["threshold"])) if reaching else None


def best_point(curve: list[dict], metric: str = "top1") -> dict:
    """The most accurate point, the cheapest among ties."""
    return max(curve, key=lambda p: (p[metric], -p["gflops"]))


def default_point(curve: list[dict], best_single: float | None, metric: str = "top1") -> dict:
    """Where a curve first matches the best single model, else its most accurate point."""
    return matching_point(curve, best_single, metric) or best_point(curve, metric)
