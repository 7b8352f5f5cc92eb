"""Extraction at scale: a pool over a manifest into a resumable, rank-sharded store.

Python use::

    from condsel.extract import load_store
    table = load_store("runs/k400_store")      # a condsel.selection.data.table.PredictionTable
"""

from condsel.extract.manifest import Manifest, read_manifest
from condsel.extract.pool import ExtractionPool, load_pool
from condsel.extract.runner import ExtractReport, ExtractSettings, extract
from condsel.extract.store import Failure, Store, load_store

__all__ = [
    "ExtractReport",
    "ExtractSettings",
    "ExtractionPool",
    "Failure",
    "Manifest",
    "Store",
    "extract",
    "load_pool",
    "load_store",
    "read_manifest",
]
