"""The method: affinity labels, the selector network and threshold rule, fusion, static choices and the routing policies.

Curves and metrics sit here, not in evaluation/, because the policies score their own sweeps with them.
"""
