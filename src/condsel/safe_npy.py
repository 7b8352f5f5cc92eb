"""Read the pickled ``.npy``/``.npz`` members of known published files safely.

Some published files (DMC-Net's UCF101 scores, W-TALC's THUMOS annotations)
store object arrays, which numpy can only read by unpickling. Unpickling an
untrusted file can run arbitrary code, so instead of ``allow_pickle=True`` we
unpickle with a whitelist that can rebuild numpy arrays, dtypes and scalars and
nothing else. Only the loaders written for those files call this.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy_format

_ALLOWED_GLOBALS = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # protocol-2 pickles spell bytes via _codecs.encode


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")
        return super().find_class(module, name)


def _read_npy(f: BinaryIO, source: str, encoding: str) -> np.ndarray:
    version = npy_format.read_magic(f)
    read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    shape, _, dtype = read_header(f)
    if not dtype.hasobject:
        f.seek(0)
        return np.load(f, allow_pickle=False)
    try:
        array = _ArraysOnlyUnpickler(f, encoding=encoding).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as e:
        raise ValueError(f"{source}: cannot read pickled array safely: {e}") from e
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise ValueError(f"{source}: pickled payload is not the array its header announces")
    return array


def load_npy(path: str | Path, encoding: str = "ASCII") -> np.ndarray:
    """Load one ``.npy`` file, object arrays included, without arbitrary unpickling."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return _read_npy(f, str(path), encoding)
    except OSError as e:
        raise ValueError(f"{path}: cannot read: {e}") from e


def load_npz(path: str | Path, encoding: str = "ASCII") -> dict[str, np.ndarray]:
    """Load every member of an ``.npz`` archive, object arrays included, safely."""
    path = Path(path)
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                data = io.BytesIO(archive.read(member))
                out[member[: -len(".npy")]] = _read_npy(data, f"{path}:{member}", encoding)
    except (OSError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a readable .npz archive: {e}") from e
    return out
