"""Orchestration: the runs that chain the layers below (compute, draw, write) for the demo and the analyses.

Only ``commands/`` imports this package; nothing below it does.
"""
