"""condsel: conditional model selection for video understanding.

A cheap model always runs; a small selector reads its outputs and decides which
model of a pool to run per video (classification) or per clip (localization).
"""

__version__ = "0.1.0"
