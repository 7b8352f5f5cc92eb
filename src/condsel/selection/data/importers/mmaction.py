"""MMAction2 1.x ``--dump results.pkl``: per-sample dicts of torch tensors, read without running the pickle's code.

``tools/test.py --dump`` pickles (protocol 2, via mmengine) one dict per test
sample: ``ActionDataSample.to_dict()`` with ``pred_score`` (C,) and
``gt_label`` (1,) tensors in 1.1 and later, ``pred_scores`` / ``gt_labels``
holding ``{"item": tensor}`` in 1.0. A pickled CPU tensor is rebuilt by
three globals: ``torch.storage._load_from_bytes`` (the storage, saved by
``torch.save`` into bytes), ``torch._utils._rebuild_tensor_v2`` (a view of
it) and ``collections.OrderedDict`` (its empty backward hooks). torch's own
``_load_from_bytes`` calls ``torch.load(weights_only=False)``, which runs any
code; here the storage bytes go through ``torch.load(weights_only=True)``,
the view is checked against its storage, and the tensor becomes a numpy
array at once. Every other global is refused as for any score pickle, so a
dump that is not plain data fails with the file named. torch is imported
only when a pickle holds a tensor.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
from pathlib import Path

import numpy as np

from condsel._io import _ArraysOnlyUnpickler

SCORE_KEYS = ("pred_score", "pred_scores")  # MMAction2 >= 1.1, 1.0
LABEL_KEYS = ("gt_label", "gt_labels")


def _load_storage(data: bytes):
    """A tensor storage from ``torch.save`` bytes, by torch's weights-only unpickler."""
    import torch

    if not isinstance(data, bytes):
        raise pickle.UnpicklingError(f"a tensor storage must be bytes, got {type(data).__name__}")
    try:
        storage = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch's reader fails in many ways on bytes it did not write; all mean "refuse"
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise pickle.UnpicklingError(f"refusing a tensor storage that is not plain data: {first_line}") from e
    if not isinstance(storage, torch.storage.TypedStorage):
        raise pickle.UnpicklingError(f"a tensor storage unpickled to a {type(storage).__name__}")
    return storage


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None) -> np.ndarray:
    """A view of ``storage`` as a numpy array (floats as float32: numpy has no bfloat16); nothing but plain data accepted."""
    import torch

    plain = (isinstance(storage, torch.storage.TypedStorage) and isinstance(offset, int)
             and all(isinstance(v, tuple) and all(isinstance(x, int) for x in v) for v in (size, stride))
             and not hooks and not metadata)
    if not plain:
        raise pickle.UnpicklingError("refusing a tensor that is not a plain view of its storage")
    # torch would grow the storage to fit the view (any size a file claims), and a zero stride repeats one
    # value any number of times: a plain tensor lies inside its storage and has no more values than it
    values = storage._size()  # the public size() warns that TypedStorage is deprecated
    last = offset + sum((n - 1) * step for n, step in zip(size, stride)) if all(n > 0 for n in size) else offset - 1
    if (len(size) != len(stride) or min((offset, *size, *stride), default=0) < 0 or last >= values
            or math.prod(size) > values):
        raise pickle.UnpicklingError(f"tensor of size {size} does not fit its storage of {values} values")
    tensor = torch._utils._rebuild_tensor(storage, offset, size, stride)
    return (tensor.float() if tensor.is_floating_point() else tensor).numpy()


class TensorUnpickler(_ArraysOnlyUnpickler):
    """The arrays-only unpickler plus plain CPU tensors, rebuilt as numpy arrays."""

    GLOBALS = {
        ("torch.storage", "_load_from_bytes"): _load_storage,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.GLOBALS:
            return self.GLOBALS[(module, name)]
        return super().find_class(module, name)


def dump_scores(path: Path, items: list) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Per-sample score arrays of a ``--dump`` list of dicts, and the stored labels when each is one class index."""
    scores, labels = [], []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"{path}: item {i} is a {type(item).__name__} among MMAction2 --dump dicts")
        score = _field(item, SCORE_KEYS)
        if score is None:
            keys = sorted(str(k) for k in item)[:8]
            raise ValueError(f"{path}: item {i} has no 'pred_score' (keys {keys}): not an MMAction2 1.x --dump file")
        scores.append(score)
        labels.append(_field(item, LABEL_KEYS))
    single = all(label is not None and np.asarray(label).size == 1 for label in labels)
    return scores, np.asarray([int(np.asarray(label).reshape(-1)[0]) for label in labels]) if single else None


def _field(item: dict, keys: tuple[str, ...]):
    """The first of ``keys`` in ``item``; MMAction2 1.0's ``LabelData`` fields hold it under ``item``."""
    value = next((item[k] for k in keys if k in item), None)
    return value.get("item") if isinstance(value, dict) else value
