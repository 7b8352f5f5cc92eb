"""Prediction tables: per-model outputs joined by sample, and the importers that build them from score files."""
