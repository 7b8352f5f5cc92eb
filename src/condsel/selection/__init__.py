"""The selection engine: pure array code from a prediction table to accuracy-vs-GFLOPs curves.

The folders follow the data flow, each importing only from the ones before it:

``data/``        the joined per-model outputs (``table``) and score files in
                 (``importers``); no dataset knowledge and no torch (the named
                 tables, bundled, stored or from score files, are ``condsel.sources``);
``method/``      the paper's affinity (Eq. 2), selector network (Eq. 1) and threshold
                 rule, the array math the policies score with (curves, metrics), output
                 fusion, static choices, pruning and the routing ``policies``;
``evaluation/``  the one cross-fitting engine, backbone choice on training folds, the
                 nested recommended front, the paper's selector summary, headline
                 figures and the typed ``summary.json`` document.
"""
