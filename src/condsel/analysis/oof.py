"""Memoised out-of-fold runs: analyses that share a (backbone, config) train the selector once.

Per-class compute and the selector diagnostics need every video's selector
probabilities, not only the summary; :func:`condsel.selection.evaluation.evaluate.out_of_fold`
keeps them and :func:`condsel.selection.evaluation.evaluate.summary_of` turns them into exactly
what ``cross_validate`` writes, read here as a :class:`SummaryDocument`.
"""

from __future__ import annotations

from condsel.selection.evaluation.document import SummaryDocument
from condsel.selection.evaluation.evaluate import OutOfFold, SelectionConfig, out_of_fold, summary_of
from condsel.selection.data.table import PredictionTable


class OutOfFoldRuns:
    """Cross-validation runs on one table, memoised: analyses that share a (backbone, config) train once."""

    def __init__(self, table: PredictionTable) -> None:
        self.table = table
        self._done: dict[tuple[str, str], tuple[OutOfFold, SummaryDocument]] = {}

    def __call__(self, backbone: str, config: SelectionConfig) -> tuple[OutOfFold, SummaryDocument]:
        """Out-of-fold predictions and their summary for this backbone and configuration."""
        key = (backbone, repr(config))
        if key not in self._done:
            oof = out_of_fold(self.table, backbone, config)
            self._done[key] = (oof, SummaryDocument.from_json(summary_of(self.table, oof, config)))
        return self._done[key]
