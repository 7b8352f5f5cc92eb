"""The extraction manifest: a ``path,label`` CSV, as ``condsel synth`` writes it.

Paths are relative to the manifest's directory (or absolute); a label is a
class name of the pool, or a class index. Problems that make the whole run
meaningless (no such file, a bad header, a label the pool does not know) raise
``ValueError`` before any work starts. A row that cannot be read (bytes that
are not UTF-8, a wrong number of fields, an empty path, a repeated path) costs
only that row: it comes back as a failure to record, and the run goes on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from condsel.datasets.manifests import ManifestEntry
from condsel.errors import names_the_file

REQUIRED_COLUMNS = ("path", "label")


@dataclass(frozen=True)
class BadRow:
    name: str  # "<manifest file name>:<line>", the row's name in failure records
    error: str


@dataclass(frozen=True)
class Manifest:
    path: Path
    entries: list[ManifestEntry]  # name = the path as written in the manifest
    bad_rows: list[BadRow]

    @property
    def names(self) -> list[str]:
        """Every video and bad row this manifest accounts for."""
        return [e.name for e in self.entries] + [r.name for r in self.bad_rows]


@names_the_file
def read_manifest(path: str | Path, num_classes: int, class_names: list[str] | None = None) -> Manifest:
    path = Path(path)
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as e:
        raise ValueError(f"{path}: cannot read the manifest: {e}") from e
    columns = _header(path, lines[0])
    index = {name: i for i, name in enumerate(class_names or [])}
    entries, bad_rows, unknown, seen = [], [], [], {}
    for number, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            continue
        row_name = f"{path.name}:{number}"
        try:
            row = _fields(raw, columns)
        except ValueError as e:
            bad_rows.append(BadRow(row_name, f"{path}:{number}: unreadable row: {e}"))
            continue
        label = _label(row["label"], index, num_classes)
        if label is None:
            unknown.append(f"line {number}: {row['label']!r}")
            continue
        name = row["path"]
        if name in seen:
            bad_rows.append(BadRow(row_name, f"{path}:{number}: path {name!r} repeats line {seen[name]}"))
            continue
        seen[name] = number
        entries.append(ManifestEntry(name, path.parent / name, label))
    if unknown:
        known = f"one of the pool's {len(index)} class names" if index else f"a class index in [0, {num_classes})"
        raise ValueError(f"{path}: {len(unknown)} row(s) with a label that is not {known}: {', '.join(unknown[:5])}")
    return Manifest(path, entries, bad_rows)


def _header(path: Path, raw: bytes) -> list[str]:
    try:
        columns = next(csv.reader([raw.decode("utf-8-sig").rstrip("\r")]), [])
    except UnicodeDecodeError:
        columns = []
    columns = [c.strip() for c in columns]
    if not set(REQUIRED_COLUMNS) <= set(columns) or len(set(columns)) != len(columns):
        raise ValueError(f"{path}: the header {columns} must name the columns {list(REQUIRED_COLUMNS)} once each")
    return columns


def _fields(raw: bytes, columns: list[str]) -> dict[str, str]:
    try:
        text = raw.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text ({e})") from None
    try:
        values = next(csv.reader([text]))
    except csv.Error as e:
        raise ValueError(str(e)) from None
    if len(values) != len(columns):
        raise ValueError(f"{len(values)} fields, the header has {len(columns)}: {text!r}")
    row = dict(zip(columns, (v.strip() for v in values)))
    if not row["path"]:
        raise ValueError("empty path")
    return row


def _label(text: str, index: dict[str, int], num_classes: int) -> int | None:
    if text in index:
        return index[text]
    if text.isdigit() and int(text) < num_classes:
        return int(text)
    return None
