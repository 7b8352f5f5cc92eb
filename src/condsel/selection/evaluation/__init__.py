"""Evaluation: cross-fitting any policy, curves and bounds, baselines, the recommended front, summary.json."""
