"""Prediction tables: per-model outputs joined by sample, and the importers and sources that build them."""
