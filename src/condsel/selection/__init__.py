"""The selection engine: pure array code from a prediction table to accuracy-vs-GFLOPs curves.

The folders follow the data flow, each importing only from the ones before it:

``data/``        the joined per-model outputs (``table``) and score files in
                 (``importers``); no dataset knowledge and no torch (the named
                 tables, bundled, stored or from score files, are ``condsel.sources``);
``method/``      the paper's affinity (Eq. 2) and selector network (Eq. 1), output
                 fusion, pruning, backbone choice and the routing ``policies``;
``evaluation/``  cross-fitting, threshold curves and bounds, static baselines, the
                 nested recommended front, metrics, headline figures and the
                 ``summary.json`` document.
"""
