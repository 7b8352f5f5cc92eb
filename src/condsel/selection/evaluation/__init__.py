"""Evaluation: the one cross-fitting engine over policies, backbone choice, the recommended front, summary.json."""
