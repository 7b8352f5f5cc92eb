"""The paper's analyses, each a pure function from a table (or a run's summary) to plain data.

One module per figure family: ``alpha`` (Fig. 3a), ``views`` (3b),
``per_class`` (3c), ``backbones`` (4a), ``latency`` (4b), ``diagnostics``
(the selector's calibration and confusions) and ``localization`` (5a-c).
Their plots live in :mod:`condsel.report.analysis_plots`; ``condsel analyze``
runs them from the command line and :mod:`condsel.workflows.analyses` writes them
(``write_analysis``) and runs the demo's set.
"""
