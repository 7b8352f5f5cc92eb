"""A pool of video models run on files: what it is, how it runs, what a run directory holds.

``config`` (the one pool type: members, weights, views; pool config files),
``train`` (training a member on decoded videos), ``inference`` (members on
decoded videos, prediction tables), ``run_dir`` (the run directory ``condsel
predict`` loads), ``predict`` (conditional inference on files), ``latency``
(its measured wall-clock cost). The networks themselves, synthetic ones
included, come from the zoo (``condsel.models``).
"""
