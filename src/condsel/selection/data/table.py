"""The prediction table: every model's outputs on the same samples.

This is the one structure the selection engine consumes. Rows are samples
(videos), joined by name; each model contributes an (N, C) array of
pre-softmax scores and a cost in GFLOPs per sample. Labels are a class index
per sample, or a 0/1 matrix for multi-label data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from condsel._io import atomic_path, load_npz


DERIVED_BYTES = 1 << 26  # label-free per-sample arrays kept per root table and kind (see PredictionTable.per_sample)


def _zero_one(labels: np.ndarray) -> bool:
    """Whether every label is 0 or 1, by range for integer types (``np.isin`` took 1.3 s on a 10,000 x 3,142 matrix)."""
    if labels.dtype == bool:
        return True
    if np.issubdtype(labels.dtype, np.integer):
        return labels.size == 0 or bool(labels.min() >= 0 and labels.max() <= 1)
    return bool(((labels == 0) | (labels == 1)).all())


@dataclass
class PredictionTable:
    names: np.ndarray
    labels: np.ndarray
    logits: dict[str, np.ndarray]
    gflops: dict[str, float] = field(default_factory=dict)
    features: dict[str, np.ndarray] = field(default_factory=dict)
    class_names: list[str] | None = None
    groups: np.ndarray | None = None  # samples sharing a group never straddle CV folds

    def __post_init__(self) -> None:
        self.names = np.asarray(self.names).astype(str)
        self.labels = np.asarray(self.labels)
        n = len(self.names)
        if len(np.unique(self.names)) != n:
            raise ValueError("sample names are not unique")
        if not self.logits:
            raise ValueError("a prediction table needs at least one model")
        if self.labels.shape[0] != n or self.labels.ndim not in (1, 2):
            raise ValueError(f"labels have shape {self.labels.shape}, expected ({n},) or ({n}, C)")
        for name, out in list(self.logits.items()):
            out = np.asarray(out, dtype=np.float32)
            if out.ndim != 2 or out.shape[0] != n:
                raise ValueError(f"model {name!r}: outputs have shape {out.shape}, expected ({n}, C)")
            if not np.isfinite(out).all():
                bad = self.names[~np.isfinite(out).all(axis=1)][:3]
                raise ValueError(f"model {name!r}: NaN/inf scores, e.g. for {list(bad)}")
            self.logits[name] = out
        widths = {out.shape[1] for out in self.logits.values()}
        if len(widths) != 1:
            raise ValueError(f"models disagree on the number of classes: { {k: v.shape[1] for k, v in self.logits.items()} }")
        c = widths.pop()
        if self.multilabel:
            if self.labels.shape[1] != c or not _zero_one(self.labels):
                raise ValueError(f"multi-label labels must be a 0/1 matrix with {c} columns")
        elif not np.issubdtype(self.labels.dtype, np.integer) or self.labels.min() < 0 or self.labels.max() >= c:
            raise ValueError(f"labels must be class indices in [0, {c})")
        if self.class_names is not None and len(self.class_names) != c:
            raise ValueError(f"{len(self.class_names)} class names for {c} classes")
        unknown = set(self.gflops) - set(self.logits)
        if unknown:
            raise ValueError(f"costs given for models not in the table: {sorted(unknown)}")
        for name, out in self.features.items():
            if name not in self.logits or np.asarray(out).shape[0] != n:
                raise ValueError(f"features for {name!r} do not match a model with {n} samples")
        if self.groups is not None:
            self.groups = np.asarray(self.groups).astype(str)
            if self.groups.shape != (n,):
                raise ValueError("groups must have one entry per sample")

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2

    @property
    def num_samples(self) -> int:
        return len(self.names)

    @property
    def num_classes(self) -> int:
        return next(iter(self.logits.values())).shape[1]

    @property
    def models(self) -> list[str]:
        """Model names by ascending cost (models without a cost last, by name)."""
        return sorted(self.logits, key=lambda m: (self.gflops.get(m, np.inf), m))

    def with_costs(self, gflops: dict[str, float]) -> PredictionTable:
        merged = {**self.gflops, **gflops}
        missing = sorted(set(self.logits) - set(merged))
        if missing:
            raise ValueError(f"no GFLOPs for models {missing}; give them in a --costs file")
        return self._replace(gflops={m: merged[m] for m in self.logits})

    def subset(self, index: np.ndarray) -> PredictionTable:
        """The rows ``index``; the subset remembers its root table and rows there, so arrays derived once from the root are shared.

        Its logits and features are :class:`RowView` s of the root's, sliced
        when read, so the many fold subsets of a large table copy nothing up
        front; rows of a checked table need no checks again.
        """
        root, rows = self.origin
        picked = rows[np.arange(self.num_samples)[index]]
        sub = object.__new__(PredictionTable)
        sub.names, sub.labels = self.names[index], self.labels[index]
        sub.logits, sub.features = RowView(root.logits, picked), RowView(root.features, picked)
        sub.gflops, sub.class_names = dict(self.gflops), self.class_names
        sub.groups = None if self.groups is None else self.groups[index]
        sub.origin = (root, picked)
        return sub

    @property
    def origin(self) -> tuple[PredictionTable, np.ndarray]:
        """(root table, this table's rows in it): itself and every row unless made by :meth:`subset`."""
        return self.__dict__.get("_origin") or (self, np.arange(self.num_samples))

    @origin.setter
    def origin(self, value: tuple[PredictionTable, np.ndarray]) -> None:
        self.__dict__["_origin"] = value

    def per_sample(self, kind: str, key: tuple, make, max_bytes: int = DERIVED_BYTES) -> list[np.ndarray]:
        """Label-free per-sample arrays ``make(root)`` (a list), made once on the root table and read on this table's rows.

        Folds and fits of a table share them. Entries of one ``kind`` are
        kept while they total at most ``max_bytes``, else only the latest.
        """
        root, rows = self.origin
        cache = root.__dict__.setdefault(f"_derived_{kind}", {})
        if key not in cache:
            arrays = make(root)
            if sum(a.nbytes for v in cache.values() for a in v) + sum(a.nbytes for a in arrays) > max_bytes:
                cache.clear()
            cache[key] = arrays
        return [a[rows] for a in cache[key]]

    def select_models(self, models: list[str]) -> PredictionTable:
        """A table of ``models`` only, in this order (a new root: arrays derived from this table are not shared)."""
        missing = [m for m in models if m not in self.logits]
        if missing:
            raise ValueError(f"models {missing} are not in the table (it has {sorted(self.logits)})")
        return self._replace(
            logits={m: self.logits[m] for m in models},
            gflops={m: g for m, g in self.gflops.items() if m in models},
            features={m: f for m, f in self.features.items() if m in models},
        )

    def _replace(self, **changes) -> PredictionTable:
        fields = dict(
            names=self.names, labels=self.labels, logits=self.logits, gflops=self.gflops,
            features=self.features, class_names=self.class_names, groups=self.groups,
        )
        fields.update(changes)
        return PredictionTable(**fields)

    def save(self, path: str | Path) -> None:
        """Write a plain, pickle-free ``.npz`` (atomically), uncompressed: float scores barely compress, and zlib took ~5 s per 160 MB."""
        arrays = {"names": self.names, "labels": self.labels}
        for m, v in self.logits.items():
            arrays[f"logits/{m}"] = v
        for m, v in self.features.items():
            arrays[f"features/{m}"] = np.asarray(v)
        if self.class_names is not None:
            arrays["class_names"] = np.asarray(self.class_names, dtype=str)
        if self.groups is not None:
            arrays["groups"] = self.groups
        arrays["gflops_json"] = np.asarray(json.dumps(self.gflops))
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> PredictionTable:
        """Read a table written by :meth:`save`, or a plain npz with ``names``, ``labels``, ``logits``."""
        path = Path(path)
        arrays = load_npz(path)  # checked reads: a corrupt or lying archive is a ValueError naming the file
        if any(a.dtype.hasobject for a in arrays.values()):
            raise ValueError(f"{path}: not a pickle-free .npz table: it holds object arrays")
        for key in ("names", "labels"):
            if key not in arrays:
                raise ValueError(f"{path}: missing array {key!r}")
        logits = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("logits/")}
        if "logits" in arrays:
            logits[path.stem] = arrays["logits"]
        features = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("features/")}
        if "features" in arrays:
            features[path.stem] = arrays["features"]
        try:
            return cls(
                names=arrays["names"],
                labels=arrays["labels"],
                logits=logits,
                gflops=json.loads(str(arrays["gflops_json"])) if "gflops_json" in arrays else {},
                features=features,
                class_names=[str(c) for c in arrays["class_names"]] if "class_names" in arrays else None,
                groups=arrays.get("groups"),
            )
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e


class RowView(Mapping):
    """A mapping's arrays restricted to ``rows``, sliced on access: a view that keeps no copy."""

    def __init__(self, arrays: Mapping[str, np.ndarray], rows: np.ndarray) -> None:
        self.arrays, self.rows = arrays, rows

    def __getitem__(self, key: str) -> np.ndarray:
        return np.asarray(self.arrays[key])[self.rows]

    def __contains__(self, key: object) -> bool:  # Mapping's default would slice the rows to answer
        return key in self.arrays

    def __iter__(self):
        return iter(self.arrays)

    def __len__(self) -> int:
        return len(self.arrays)
