"""The method: affinity labels, the selector network, output fusion and the routing policies."""
