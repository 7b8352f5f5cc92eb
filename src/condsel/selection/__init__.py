"""The selection engine: pure array code from a prediction table to accuracy-vs-GFLOPs curves.

``table`` (the joined per-model outputs), ``importers`` (score files in),
``affinity`` (Eq. 2), ``selector`` (Eq. 1), ``curves`` (threshold sweeps,
baselines, bounds), ``headline`` (the summary figures), ``metrics``,
``evaluate`` (cross-validation, hold-out, budgets) and ``summary`` (text).
"""
