"""The synthetic pool: small video CNNs of rising cost, trained on CPU, run on decoded videos.

``members`` (what a member is, the default pool), ``models`` (the networks),
``train`` (training on decoded videos), ``inference`` (members on decoded
videos, prediction tables), ``run_dir`` (the run directory ``condsel predict``
loads), ``predict`` (conditional inference on files), ``latency`` (its
measured wall-clock cost).
"""
