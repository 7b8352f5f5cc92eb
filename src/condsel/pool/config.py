"""Pool configs: a TOML file naming a pool's zoo models, weights, views and backbone.

Format (see ``examples/pool_x3d_kinetics.toml`` and ``docs/zoo.md``)::

    backbone = "x3d_xs"              # the member that always runs; the selector reads it

    [models.x3d_xs]                  # member name, used in tables and reports
    arch = "x3d_xs"                  # zoo model; defaults to the member name
    checkpoint = "weights/X3D_XS.pyth"   # relative to this file; optional
    num_classes = 400                # default: the zoo model's
    clips = 10                       # views = clips x crops
    crops = 3                        # 1 (centre) or 3 (left/centre/right)
    frames = 4                       # optional overrides of the zoo defaults
    stride = 12
    crop = 160
    fps = 30

The whole file is checked on load; errors name the file and the member.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from condsel import models
from condsel.video.sampling import ClipSpec

MEMBER_KEYS = {"arch", "checkpoint", "num_classes", "clips", "crops", "frames", "stride", "crop", "fps"}


@dataclass(frozen=True)
class PoolMember:
    name: str
    arch: str
    checkpoint: Path | None
    num_classes: int
    clips: int
    crops: int
    frames: int
    stride: int
    crop: int
    fps: float

    @property
    def views(self) -> int:
        return self.clips * self.crops

    @property
    def clip_spec(self) -> ClipSpec:
        """How ``condsel.video`` samples this member's test views."""
        return ClipSpec(
            num_frames=self.frames,
            stride=self.stride,
            size=self.crop,
            clips=self.clips,
            crops=self.crops,
            target_fps=self.fps,
        )

    @property
    def gflops_per_view(self) -> float:
        return models.gflops(self.arch, self.frames, self.crop, self.num_classes)

    @property
    def gflops_per_video(self) -> float:
        return self.gflops_per_view * self.views


@dataclass(frozen=True)
class PoolConfig:
    path: Path
    backbone: str
    members: tuple[PoolMember, ...]

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def member(self, name: str) -> PoolMember:
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(f"{self.path}: no member {name!r} (members: {', '.join(self.names)})")


def _positive_int(path: Path, where: str, key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{path}: {where} {key} = {value!r} must be a positive integer")
    return value


def _member(path: Path, name: str, table: object) -> PoolMember:
    where = f"[models.{name}]"
    if not isinstance(table, dict):
        raise ValueError(f"{path}: {where} must be a table")
    unknown = sorted(set(table) - MEMBER_KEYS)
    if unknown:
        raise ValueError(f"{path}: {where} unknown key(s) {unknown}; allowed: {sorted(MEMBER_KEYS)}")
    arch = table.get("arch", name)
    if not isinstance(arch, str) or arch not in models.list_models():
        raise ValueError(f"{path}: {where} arch {arch!r} is not a zoo model ({', '.join(models.list_models())})")
    spec = models.get_spec(arch)
    checkpoint = table.get("checkpoint")
    if checkpoint is not None:
        if not isinstance(checkpoint, str) or not checkpoint:
            raise ValueError(f"{path}: {where} checkpoint must be a path string")
        checkpoint = (path.parent / checkpoint).resolve()
    ints = {
        key: _positive_int(path, where, key, table.get(key, default))
        for key, default in (
            ("num_classes", spec.num_classes),
            ("clips", 1),
            ("crops", 1),
            ("frames", spec.frames),
            ("stride", spec.stride),
            ("crop", spec.crop),
        )
    }
    fps = table.get("fps", spec.fps)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        raise ValueError(f"{path}: {where} fps = {fps!r} must be a positive number")
    if ints["crops"] not in (1, 3):
        raise ValueError(f"{path}: {where} crops = {ints['crops']} must be 1 (centre) or 3 (left/centre/right)")
    return PoolMember(name=name, arch=arch, checkpoint=checkpoint, fps=float(fps), **ints)


def load_pool_config(path: str | Path) -> PoolConfig:
    """Parse and validate a pool config file."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{path}: cannot read pool config: {e}") from e
    unknown = sorted(set(doc) - {"backbone", "models"})
    if unknown:
        raise ValueError(f"{path}: unknown top-level key(s) {unknown}; expected 'backbone' and [models.*]")
    tables = doc.get("models")
    if not isinstance(tables, dict) or not tables:
        raise ValueError(f"{path}: no [models.<name>] tables")
    members = tuple(_member(path, name, table) for name, table in tables.items())
    backbone = doc.get("backbone")
    if backbone not in tables:
        raise ValueError(f"{path}: backbone = {backbone!r} must name one of the models ({', '.join(tables)})")
    return PoolConfig(path=path, backbone=backbone, members=members)


def build_pool(config: PoolConfig, require_weights: bool = True) -> dict[str, nn.Module]:
    """Every member's model in eval mode, weights loaded, keyed by member name.

    All checkpoint paths are checked before any model is built. Without
    ``require_weights`` a member lacking a checkpoint is randomly initialised
    (for cost and shape checks only).
    """
    problems = []
    for m in config.members:
        if m.checkpoint is None and require_weights:
            problems.append(f"{m.name}: no checkpoint given")
        elif m.checkpoint is not None and not m.checkpoint.is_file():
            problems.append(f"{m.name}: checkpoint {m.checkpoint} not found")
    if problems:
        raise ValueError(f"{config.path}: cannot build the pool: " + "; ".join(problems))
    return {m.name: models.create_model(m.arch, m.num_classes, m.checkpoint) for m in config.members}
