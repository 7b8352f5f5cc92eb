"""The extraction store: one file per completed video, written atomically.

Layout of a store directory::

    store.json                  what made it: pool members, views, costs, classes, settings
    videos/3f/3f9a...c1.npz     one completed video (name = SHA-1 of the video's manifest name)
    failures/3f9a...c1.json     why the latest attempt at a video (or manifest row) failed

Why this format and not Zarr, HDF5 or per-rank shard files: a long run is
killed at arbitrary moments (kill -9, pre-emption, a node lost), so the unit
of durability must be the unit of work, one video. Each entry is written to a
temporary name in its final directory, flushed to disk and ``os.replace``d
onto a name derived from the video's name. A rename within a directory is
atomic on POSIX file systems (and on NFS/Lustre), so a reader sees the whole
entry or none of it; a re-run skips every video whose entry exists and can
never write a second copy, since the file name is a function of the video.
Ranks write disjoint videos, so writes need no locks or coordination. An
append-only shard file (HDF5/Zarr chunk per rank) would have to be repaired
or truncated after a crash in the middle of a write, and HDF5 is not safe
for concurrent writers without MPI. Nothing here needs a dependency beyond
numpy, and every file is pickle-free (``allow_pickle=False`` on read). The
two-level fan-out keeps directories at about a thousand files for 250k
videos.

Every entry has one row per window: a single window covering the whole video,
or with ``per_clip_seconds`` consecutive windows of an untrimmed video. Arrays
in an entry: ``name``, ``label``, ``windows`` (K, 2) seconds, ``logits/<model>``
(K, C) aggregated over the views, ``features`` (K, D) the backbone's pooled
embedding averaged over its views, and with ``save_views`` ``views/<model>``
(K, V, C) per-view logits.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from condsel._io import atomic_path, write_json
from condsel.selection.data.table import PredictionTable

log = logging.getLogger(__name__)

FORMAT = "condsel.extract"
VERSION = 1
CREATING_PREFIX = ".store.json."  # store.json staged by a creation in progress


def video_key(name: str) -> str:
    """The file stem of a video's entry and failure record."""
    return hashlib.sha1(name.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Failure:
    video: str
    error: str
    stage: str  # "manifest", "decode" or "inference"
    manifest: str  # the manifest file the attempt came from

    def to_dict(self) -> dict:
        return {"video": self.video, "error": self.error, "stage": self.stage, "manifest": self.manifest}


class Store:
    """A store directory. Open it with :meth:`create` (extraction) or :meth:`open` (reading)."""

    def __init__(self, root: Path, meta: dict):
        self.root = root
        self.meta = meta

    @classmethod
    def open(cls, root: str | Path) -> Store:
        root = Path(root)
        path = root / "store.json"
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{root}: not an extraction store (no store.json)") from None
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: unreadable store metadata: {e}") from e
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise ValueError(f"{path}: not a {FORMAT} store of version {VERSION}")
        return cls(root, meta)

    @classmethod
    def create(cls, root: str | Path, meta: dict) -> Store:
        """Open the store at ``root`` for ``meta``, writing ``store.json`` if the store is new.

        An existing store must have been made by the same pool and settings
        (``meta["identity"]``): mixing outputs of two pools in one store would
        silently corrupt every table read from it. Call on one process (rank
        0) only.

        Creation is atomic and exclusive: ``store.json`` is written whole
        under a temporary name and hard-linked into place, which fails if
        another run got there first; that run's store is then joined as a
        resumed run joins it. Leftover temporary files of a killed run are
        removed, unless another run is using the store now (:meth:`in_use`),
        since they are then that run's writes in progress.
        """
        root = Path(root)
        meta = {"format": FORMAT, "version": VERSION, **meta}
        root.mkdir(parents=True, exist_ok=True)
        if not (root / "store.json").exists():
            if any(not _left_by_a_creation(p) for p in root.iterdir()):
                raise ValueError(f"{root}: exists, is not empty and is not an extraction store")
            _create_exclusively(root / "store.json", meta)
        store = cls.open(root)
        store.check_identity(meta["identity"])
        (root / "videos").mkdir(exist_ok=True)  # store.json comes first: a run that joins early makes them too
        (root / "failures").mkdir(exist_ok=True)
        store._tidy_unless_in_use()
        return store

    def _tidy_unless_in_use(self) -> None:
        with open(self.root / "store.json", "rb") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("%s: another run is writing to this store; its temporary files are left alone", self.root)
            else:
                self._remove_partial_writes()

    @contextmanager
    def in_use(self) -> Iterator[Store]:
        """Held by a run for as long as it writes: a shared lock on ``store.json``, released even by kill -9."""
        with open(self.root / "store.json", "rb") as f:
            fcntl.flock(f, fcntl.LOCK_SH)
            yield self

    def check_identity(self, identity: str) -> None:
        if self.meta["identity"] != identity:
            raise ValueError(
                f"{self.root}: this store was made by a different pool or different settings "
                f"(store pool {self.meta['pool']['source']}, identity {self.meta['identity'][:12]} vs {identity[:12]}); "
                "use a new --out directory"
            )

    @property
    def models(self) -> list[str]:
        return [m["name"] for m in self.meta["pool"]["members"]]

    @property
    def backbone(self) -> str:
        return self.meta["pool"]["backbone"]

    def _entry_path(self, key: str) -> Path:
        return self.root / "videos" / key[:2] / f"{key}.npz"

    def _failure_path(self, key: str) -> Path:
        return self.root / "failures" / f"{key}.json"

    def _remove_partial_writes(self) -> None:
        for tmp in [*self.root.glob("videos/*/*.tmp"), *self.root.glob("failures/*.tmp")]:
            log.info("removing %s, left by an interrupted write", tmp)
            tmp.unlink(missing_ok=True)

    def completed_keys(self) -> set[str]:
        """Keys of every stored video, from the directory listing alone (no file is opened)."""
        keys = set()
        for shard in (self.root / "videos").iterdir():
            if shard.is_dir():
                keys.update(p.name[: -len(".npz")] for p in os.scandir(shard) if p.name.endswith(".npz"))
        return keys

    def write_entry(self, name: str, label: int, arrays: Mapping[str, np.ndarray]) -> None:
        """Record one completed video atomically, then drop any failure record it had."""
        key = video_key(name)
        path = self._entry_path(key)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:  # synced before the rename
            np.savez(f, name=np.asarray(name), label=np.asarray(label, dtype=np.int64), **arrays)
        self._failure_path(key).unlink(missing_ok=True)

    def write_failure(self, failure: Failure) -> None:
        write_json(self._failure_path(video_key(failure.video)), failure.to_dict())

    def failures(self) -> list[Failure]:
        """Failure records, by video name."""
        records = []
        for path in sorted((self.root / "failures").glob("*.json")):
            try:
                records.append(Failure(**json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, json.JSONDecodeError, TypeError) as e:
                raise ValueError(f"{path}: unreadable failure record: {e}") from e
        return sorted(records, key=lambda f: f.video)

    def clear_failures(self, manifest: str) -> None:
        """Forget the failures of an earlier attempt at ``manifest``: this run retries them all."""
        for failure in self.failures():
            if failure.manifest == manifest:
                self._failure_path(video_key(failure.video)).unlink(missing_ok=True)

    def _entry_files(self) -> list[Path]:
        return sorted((self.root / "videos").glob("*/*.npz"))

    def entries(self) -> Iterator[dict[str, np.ndarray]]:
        """Every stored video's arrays, in the order of their keys."""
        for path in self._entry_files():
            yield self._read_entry(path)

    def video_names(self) -> list[str]:
        return sorted(str(self._read_entry(path, ("name",))["name"]) for path in self._entry_files())

    def _read_entry(self, path: Path, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in (data.files if keys is None else keys)}
        except (OSError, ValueError, KeyError, EOFError) as e:
            raise ValueError(f"{path}: unreadable store entry: {e}") from e
        if path.stem != video_key(str(arrays.get("name", ""))):
            raise ValueError(f"{path}: entry does not hold the video its file name says")
        return arrays

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())


def _left_by_a_creation(path: Path) -> bool:
    """What a store's creation makes before (an older condsel: also after) ``store.json`` appears."""
    return path.name in ("videos", "failures") or path.name.startswith(CREATING_PREFIX)


def _create_exclusively(path: Path, meta: dict) -> None:
    """``path`` holding ``meta``, unless another process creates it first (then theirs stands)."""
    staged = path.with_name(f"{CREATING_PREFIX}{os.getpid()}.{uuid.uuid4().hex[:8]}")
    write_json(staged, meta)  # whole and synced before it gets its real name
    try:
        os.link(staged, path)
    except FileExistsError:
        log.info("%s: another run created this store a moment ago; joining it", path.parent)
    finally:
        staged.unlink(missing_ok=True)


def load_store(root: str | Path) -> PredictionTable:
    """The store's outputs as a PredictionTable, rows sorted by name.

    Whole-video stores give one row per video. Per-clip stores give one row
    per window, named ``<video>#<k>``, with the video as the row's CV group so
    that windows of one video never straddle folds; costs are then per window.
    """
    store = Store.open(root)
    models, backbone = store.models, store.backbone
    entries = sorted(store.entries(), key=lambda e: str(e["name"]))
    if not entries:
        raise ValueError(f"{store.root}: the store holds no videos yet")
    per_clip = store.meta["settings"]["per_clip_seconds"] is not None
    names, groups = [], []
    for e in entries:
        video = str(e["name"])
        k = len(e["windows"])
        names.extend([f"{video}#{i}" for i in range(k)] if per_clip else [video])
        groups.extend([video] * k)
    return PredictionTable(
        names=np.asarray(names),
        labels=np.concatenate([np.full(len(e["windows"]), int(e["label"])) for e in entries]),
        logits={m: np.concatenate([e[f"logits/{m}"] for e in entries]) for m in models},
        gflops=dict(store.meta["gflops"]),
        features={backbone: np.concatenate([e["features"] for e in entries])},
        class_names=store.meta["pool"]["class_names"],
        groups=np.asarray(groups) if per_clip else None,
    )
