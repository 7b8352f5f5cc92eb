"""Named operating points on a selector's threshold sweep (a summary's ``curves.selector`` list)."""

from __future__ import annotations

from condsel.selection.evaluation.document import SummaryDocument
from condsel.selection.method.operating import best_point, default_point, matching_point

__all__ = ["best_point", "default_operating_point", "matching_point"]


def default_operating_point(doc: SummaryDocument) -> dict:
    """Where the selector first matches the best single model, else its most accurate point."""
    return default_point(doc.curves.selector, doc.headline.best_accuracy, doc.metric)
