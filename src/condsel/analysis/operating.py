"""Named operating points on a selector's threshold sweep (a summary's ``curves.selector`` list)."""

from __future__ import annotations

from condsel.selection.method.operating import best_point, default_point, matching_point

__all__ = ["best_point", "default_operating_point", "matching_point"]


def default_operating_point(summary: dict) -> dict:
    """Where the selector first matches the best single model, else its most accurate point."""
    metric = summary.get("metric", "top1")
    curve = summary["curves"]["selector"]
    return default_point(curve, summary["summary"].get(f"best_{metric}"), metric)
