"""Small private helpers shared across condsel: atomic writes, JSON, the safe npy reader, torch threads.

Safe npy: some published files (DMC-Net's UCF101 scores, W-TALC's THUMOS
annotations) store object arrays, which numpy can only read by unpickling.
Unpickling an untrusted file can run arbitrary code, so instead of
``allow_pickle=True`` we unpickle with a whitelist that can rebuild numpy
arrays, dtypes and scalars and nothing else. Only the loaders written for those
files call it; :func:`load_pickle` applies the same whitelist to whole pickle
files.
"""

from __future__ import annotations

import ctypes
import io
import json
import math
import os
import pickle
import shutil
import tempfile
import tokenize
import tomllib
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy_format


MMAP_THRESHOLD = 2 << 20  # see fix_mmap_threshold: above a chunk's temporaries (row_chunks), below a fold's arrays


def fix_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Serve every allocation of ``size`` bytes or more by its own mapping, returned to the system when freed (glibc ``mallopt``).

    Without it glibc raises the threshold after each large free (up to
    32 MiB), later whole-table arrays come from the heap, and the freed
    holes stay mapped: a 20,000 x 10 x 400 run's parent held 1.5 GB of
    which 0.3 GB was live. Chunked (N, C) work keeps its temporaries below
    ``size``, so they still reuse heap memory. False where the C library is not glibc.
    """
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(-3, int(size)))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def return_freed_memory() -> bool:
    """Hand the C heap's free pages back to the system (glibc ``malloc_trim``); False where the C library is not glibc.

    glibc raises its mmap threshold after a large free, up to 32 MiB; the
    (N, C) temporaries of thousands of fits then come from the heap, and a
    fragmented heap keeps their memory: a 40,000-video table's run grew by
    gigabytes that way. Trimming after each fit returns it, at the cost of
    a walk over the free lists.
    """
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; when the block succeeds it is synced and renamed over ``path``.

    Works with any writer that takes a file name (``np.save``, ``torch.save``,
    ``savefig``, PyAV). The temporary name starts with a dot and ends in
    ``.tmp``, so listings of finished files can skip it. The result is
    world-readable (``mkstemp`` alone would leave 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def replacing_dir(path: str | Path):
    """Let a run write ``path`` afresh; keep what it writes only if the block succeeds.

    The folder's previous contents are renamed to a hidden sibling
    (``.NAME.previous-PID``) first, so the run writes into an empty ``path``
    and every path it records is the final one. If the block raises, what the
    run wrote is removed and the previous contents are renamed back: a failed
    run leaves ``path`` as it was (or absent, if it was). If the block
    succeeds, the previous contents are deleted, so ``path`` holds this run
    alone, never a mix of two. A process killed part-way leaves the hidden
    sibling behind, with the previous contents intact.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path}: exists and is not a folder")
    if Path.cwd().resolve().is_relative_to(path.resolve()):
        raise ValueError(f"{path}: is the working folder or holds it; a run replaces its output folder, so name another")
    previous = path.parent / f".{path.name}.previous-{os.getpid()}"
    if path.exists():
        os.replace(path, previous)
    try:
        path.mkdir(parents=True)
        yield path
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        if previous.exists():
            os.replace(previous, path)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def read_toml(path: str | Path, what: str) -> dict:
    """A TOML file as a dict; any read or syntax error names the file and ``what`` it should have been."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{path}: cannot read {what}: {e}") from e


def write_json(path: str | Path, data) -> None:
    """Write JSON via a temporary file and a rename, so a reader never sees half a file."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


@contextmanager
def torch_threads(count: int):
    """Temporarily run torch with ``count`` threads.

    Small networks on small batches (the selector, W-TALC heads) spend their
    time in per-op overhead, where extra threads only add synchronisation: UCF101
    5-fold selector CV took 7.6 s with 1 thread and 43 s with 2 on busy cores.
    Latency measurements also pin the thread count so runs compare.
    torch is imported here, not with the module: the table readers and
    ``condsel detection-map`` use this module without ever needing torch.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


_ALLOWED_GLOBALS = (
    {(module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray") for name in ("_reconstruct", "scalar")}
    | {(module, "_frombuffer") for module in ("numpy.core.numeric", "numpy._core.numeric")}  # protocol 5
    | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # protocol-2 pickles spell bytes via _codecs.encode
)


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")
        return super().find_class(module, name)


def _check_size(f: BinaryIO, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Refuse a header that announces more data than follows it, before numpy allocates what it announces."""
    start = f.tell()
    follows = f.seek(0, io.SEEK_END) - start
    f.seek(start)
    announced = math.prod(shape) * dtype.itemsize
    if announced > follows:
        raise ValueError(f"the header announces {shape} {dtype} ({announced} bytes) but {follows} bytes follow")


def _read_npy(f: BinaryIO, source: str, encoding: str) -> np.ndarray:
    try:
        version = npy_format.read_magic(f)
        read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, _, dtype = read_header(f)
        if not dtype.hasobject:
            _check_size(f, shape, dtype)
            f.seek(0)
            return np.load(f, allow_pickle=False)
    except (ValueError, EOFError, tokenize.TokenError) as e:  # numpy parses a damaged header with tokenize
        raise ValueError(f"{source}: not a readable .npy array: {e}") from e
    try:
        array = _ArraysOnlyUnpickler(f, encoding=encoding).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError, LookupError) as e:
        raise ValueError(f"{source}: cannot read pickled array safely: {e}") from e
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise ValueError(f"{source}: pickled payload is not the array its header announces")
    return array


def load_npy(path: str | Path, encoding: str = "ASCII") -> np.ndarray:
    """Load one ``.npy`` file, object arrays included, without arbitrary unpickling."""
    path = Path(path)
    try:
        data = io.BytesIO(path.read_bytes())  # in memory: a damaged length field cannot make a read allocate more
    except OSError as e:
        raise ValueError(f"{path}: cannot read: {e}") from e
    return _read_npy(data, str(path), encoding)


def load_pickle(path: str | Path, encoding: str = "ASCII", unpickler: type[pickle.Unpickler] | None = None):
    """Unpickle a file that may hold only numpy arrays and plain Python containers and scalars.

    For published result files such as mmaction2's ``--out results.pkl`` (a
    list of per-sample score arrays). Anything else (a model, a tensor, a
    callable) is refused with an error naming the file. ``unpickler``: a
    subclass of the arrays-only one that admits a few more globals.
    """
    path = Path(path)
    try:
        data = io.BytesIO(path.read_bytes())  # a damaged length opcode then reads what is there, not what it claims
    except OSError as e:
        raise ValueError(f"{path}: cannot read: {e}") from e
    try:
        return (unpickler or _ArraysOnlyUnpickler)(data, encoding=encoding).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError, LookupError) as e:
        raise ValueError(f"{path}: cannot read pickle safely: {e}") from e


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
    except (OSError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(f"{path}: not a readable .npz archive: {e}") from e
    return out
