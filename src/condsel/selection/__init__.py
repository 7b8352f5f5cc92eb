"""The selection engine: pure array code from a prediction table to accuracy-vs-GFLOPs curves.

``table`` (the joined per-model outputs), ``importers`` (score files in),
``affinity`` (Eq. 2), ``selector`` (Eq. 1), ``curves`` (threshold sweeps,
baselines, bounds), ``headline`` (the summary figures), ``metrics``,
``evaluate`` (cross-validation, hold-out, budgets) and ``summary`` (text).

Policies beyond the paper's selector: ``policies`` (the protocol and the
selector, cascade, learned-cascade and ensemble-selector policies), ``fusion``
(fusing members' outputs), ``static`` (static choices, their hull, the
fusion-aware oracle), ``prune`` (pool pruning, cascade orders), ``backbone``
(choosing a backbone on training samples), ``crossfit`` (out-of-fold and
nested fits of any policy), ``recommend`` (the nested recommended front) and
``fronts`` (all of it as ``summary.json`` sections).
"""
