"""``provenance.json``: the exact commands that wrote a run directory, and the versions they ran with.

Format (``condsel-provenance/1``)::

    {"format": "condsel-provenance/1",
     "commands": ["condsel demo --out demo_out", ...],   # in the order they ran
     "versions": {"condsel": "0.1.0", "git": "d9bd85a (modified)", "python": "3.11.2",
                  "torch": "2.13.0", "numpy": ..., "matplotlib": ..., "av": ..., "platform": ...}}

``cli.main`` calls :func:`write_provenance` for each command that writes a run
directory, into the fresh folder the run replaces ``--out`` with, so the
list holds the command that wrote the folder (a directory assembled by hand
from several runs can hold more).
"""

from __future__ import annotations

import json
import platform
import shlex
import subprocess
from importlib import metadata
from pathlib import Path

from condsel._io import write_json

PROVENANCE_FILE = "provenance.json"
PROVENANCE_FORMAT = "condsel-provenance/1"
PACKAGES = ("condsel", "torch", "numpy", "matplotlib", "av", "opencv-python-headless", "tqdm")


def _git_revision() -> str | None:
    """Commit of the checkout condsel runs from, if it runs from one (an editable install)."""
    root = Path(__file__).resolve().parents[3]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + (" (modified)" if dirty.stdout.strip() else "")


def versions() -> dict[str, str]:
    """Versions of Python, the platform and the packages a run depends on."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    git = _git_revision()
    if git:
        found["git"] = git
    return found


def read_provenance(directory: str | Path) -> dict | None:
    """The directory's provenance, or None when it has none; a malformed file is an error naming it."""
    path = Path(directory) / PROVENANCE_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != PROVENANCE_FORMAT or not isinstance(doc.get("commands"), list):
            raise ValueError(f"expected format {PROVENANCE_FORMAT!r} with a list of commands")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"{path}: not a condsel provenance file: {e}") from e
    return doc


def write_provenance(directory: str | Path, argv: list[str]) -> Path:
    """Record ``condsel <argv>`` (``argv`` = the arguments after ``condsel``, i.e. ``sys.argv[1:]``) and the versions."""
    directory = Path(directory)
    doc = read_provenance(directory) or {"format": PROVENANCE_FORMAT, "commands": []}
    command = shlex.join(["condsel", *map(str, argv)])
    if not doc["commands"] or doc["commands"][-1] != command:
        doc["commands"].append(command)
    doc["versions"] = versions()
    path = directory / PROVENANCE_FILE
    write_json(path, doc)
    return path
