"""Memoised out-of-fold runs: analyses that share a (selector, config) cross-fit the selector once.

Per-class compute and the selector diagnostics need every video's selector
probabilities, not only the summary; :func:`condsel.selection.evaluation.evaluate.out_of_fold`
keeps them and :func:`condsel.selection.evaluation.evaluate.summary_of` turns them into exactly
what ``cross_validate`` writes (the same engine as ``condsel table``), read as a :class:`SummaryDocument`.
"""

from __future__ import annotations

from condsel.selection.evaluation.crossfit import cross_fit
from condsel.selection.evaluation.document import SummaryDocument
from condsel.selection.evaluation.evaluate import OutOfFold, SelectionConfig, fold_ids, out_of_fold, summary_of
from condsel.selection.method.policies import SelectorPolicy
from condsel.selection.data.table import PredictionTable


class OutOfFoldRuns:
    """Cross-validation runs on one table, memoised: analyses that share a (selector, config) train once."""

    def __init__(self, table: PredictionTable) -> None:
        self.table = table
        self._done: dict[tuple[str, str], tuple[OutOfFold, SummaryDocument]] = {}

    def __call__(self, selector: SelectorPolicy, config: SelectionConfig) -> tuple[OutOfFold, SummaryDocument]:
        """Out-of-fold predictions and their summary for this selector (with its backbone) and protocol."""
        key = (repr(sorted(selector.get_params().items())), repr(config))
        if key not in self._done:
            fits = cross_fit(selector, self.table, fold_ids(self.table, config.folds, config.seed), nested=False)
            oof = out_of_fold(fits, self.table, config)
            self._done[key] = (oof, SummaryDocument.from_json(summary_of(self.table, oof, config)))
        return self._done[key]
