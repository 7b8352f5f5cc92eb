"""Plots and reports built from ``summary.json`` dicts."""
