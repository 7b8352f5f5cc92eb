"""Weakly-supervised temporal action localization with clip-level model selection.

W-TALC heads per stream, CAS -> proposals, ActivityNet-rule detection mAP,
THUMOS'14 / MultiThumos annotations, and the paper's §3.3 clip-level selection
between an RGB and a motion stream. See docs/localization.md.
"""
