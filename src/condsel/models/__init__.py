"""The model zoo: real video architectures in plain torch, with their costs.

The registry logic lives in :mod:`condsel.models.registry` (one module per
model family beside it, as timm does); this package only re-exports it.
"""

from condsel.models.registry import ModelSpec, create_model, describe, get_spec, gflops, input_shape, list_models

__all__ = ["ModelSpec", "create_model", "describe", "get_spec", "gflops", "input_shape", "list_models"]
