"""condsel: conditional model selection for video understanding.

A cheap model always runs; a small selector reads its outputs and decides which
model of a pool to run per video (classification) or per clip (localization).

The public API is re-exported here (``condsel.__all__``); each name is imported
on first use, so ``import condsel`` and ``condsel --help`` stay quick.

Examples
--------
>>> import condsel
>>> table = condsel.load_table("ucf101-split1")
>>> sorted(table.logits)
['flow', 'gen_flow', 'iframe', 'mv', 'residual']
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_API: dict[str, str] = {
    # prediction tables and where they come from
    "PredictionTable": "condsel.selection.data.table",
    "load_table": "condsel.sources",
    "default_costs": "condsel.sources",
    "read_scores": "condsel.selection.data.importers",
    "join_scores": "condsel.selection.data.importers",
    # selection policies (estimators: hyperparameters in __init__, fit returns self)
    "Policy": "condsel.selection.method.policies",
    "SelectorPolicy": "condsel.selection.method.policies",
    "CascadePolicy": "condsel.selection.method.policies",
    "EnsembleSelectorPolicy": "condsel.selection.method.policies",
    "load_policy": "condsel.selection.method.policies",
    "Selector": "condsel.selection.method.network",
    # evaluation
    "SelectionConfig": "condsel.selection.evaluation.evaluate",
    "cross_validate": "condsel.selection.evaluation.comparison",
    "evaluate_holdout": "condsel.selection.evaluation.evaluate",
    "evaluate_policies": "condsel.selection.evaluation.comparison",
    "SummaryDocument": "condsel.selection.evaluation.document",
    "load_summary": "condsel.selection.evaluation.document",
    # models and runs
    "create_model": "condsel.models",
    "list_models": "condsel.models",
    "load_run": "condsel.pool.run_dir",
    # localization
    "detection_map": "condsel.localization.detection_map",
    # errors
    "CondselError": "condsel.errors",
    "NotFittedError": "condsel.errors",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'condsel' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
