"""The pool to extract, loaded from a pool config or a ``condsel demo`` run directory.

Both sources are reduced to the same description: per member, how it reads a
video (``ClipSpec``), its input normalisation and its counted cost, plus the
networks themselves. That description, with the checksums of the weights,
is the pool's identity, which a store records so that a re-run can never
append the outputs of a different pool.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from condsel.video.sampling import ClipSpec


@dataclass(frozen=True)
class ExtractMember:
    name: str
    clip: ClipSpec
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    gflops: float  # one view's multiply-adds x views, i.e. per video (per window with --per-clip)
    weights_sha256: str | None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "clip": self.clip.to_dict(),
            "mean": list(self.mean),
            "std": list(self.std),
            "gflops": self.gflops,
            "weights_sha256": self.weights_sha256,
        }


@dataclass(frozen=True)
class ExtractionPool:
    source: Path
    backbone: str
    members: tuple[ExtractMember, ...]
    models: dict[str, nn.Module]
    num_classes: int
    class_names: list[str] | None

    def describe(self) -> dict:
        """JSON-able description, without the networks."""
        return {
            "source": str(self.source),
            "backbone": self.backbone,
            "members": [m.to_dict() for m in self.members],
            "num_classes": self.num_classes,
            "class_names": self.class_names,
        }

    def identity(self, settings: dict) -> str:
        """A checksum of everything that determines the stored numbers (not where the pool lives)."""
        described = {k: v for k, v in self.describe().items() if k != "source"}
        text = json.dumps({"pool": described, "settings": settings}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_pool(source: str | Path, class_names_file: str | Path | None = None) -> ExtractionPool:
    """A pool config (``.toml``) or a run directory, with every network built and in eval mode."""
    source = Path(source)
    if source.is_dir():
        if class_names_file is not None:
            raise ValueError(f"{source}: a run directory carries its own class names; drop --classes")
        return _from_run_dir(source)
    return _from_pool_config(source, class_names_file)


def _from_pool_config(path: Path, class_names_file: str | Path | None) -> ExtractionPool:
    from condsel import models
    from condsel.datasets.manifests import read_class_names
    from condsel.pool.config import build_pool, load_pool_config

    config = load_pool_config(path)
    widths = {m.num_classes for m in config.members}
    if len(widths) != 1:
        raise ValueError(f"{path}: members disagree on num_classes ({sorted(widths)}); a table needs one label space")
    members = []
    for m in config.members:
        spec = models.get_spec(m.arch)
        if spec.modality != "rgb":
            raise ValueError(f"{path}: member {m.name} reads {spec.modality}; condsel extract feeds decoded RGB frames only")
        members.append(
            ExtractMember(m.name, m.clip_spec, tuple(spec.mean), tuple(spec.std), m.gflops_per_video, sha256_file(m.checkpoint))
        )
    num_classes = widths.pop()
    class_names = None
    if class_names_file is not None:
        class_names = read_class_names(class_names_file)
        if len(class_names) != num_classes:
            raise ValueError(f"{class_names_file}: {len(class_names)} class names for a pool of {num_classes} classes")
    return ExtractionPool(path, config.backbone, tuple(members), build_pool(config), num_classes, class_names)


def _from_run_dir(path: Path) -> ExtractionPool:
    from condsel.pool.run_dir import load_run
    from condsel.video.sampling import MEAN, STD

    run = load_run(path)
    members = tuple(
        ExtractMember(name, run.members[name].clip, (MEAN,) * 3, (STD,) * 3, run.gflops[name], sha256_file(run.checkpoint(name)))
        for name in run.order
    )
    return ExtractionPool(path, run.backbone, members, run.models, len(run.class_names), list(run.class_names))
