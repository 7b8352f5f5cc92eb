"""The pool: its members (a zoo model, its weights, how it reads a video) and its backbone.

One type for every use: a pool config file (``condsel zoo --pool``,
``extract``, ``fit``), the synthetic demo's pool and the pool of a run
directory (``RUNDIR/pool.toml``, written by :func:`write_pool_config`).

Format (see ``examples/pool_x3d_kinetics.toml`` and ``docs/zoo.md``)::

    backbone = "x3d_xs"              # the member that always runs; the policy reads it

    [models.x3d_xs]                  # member name, used in tables and reports
    arch = "x3d_xs"                  # zoo model; defaults to the member name
    checkpoint = "weights/X3D_XS.pyth"   # relative to this file
    sha256 = "9f2c..."               # optional: the checkpoint must have this digest
    num_classes = 400                # default: the zoo model's
    clips = 10                       # views = clips x crops
    crops = 3                        # 1 (centre) or 3 (left/centre/right)
    frames = 4                       # optional overrides of the zoo defaults
    stride = 12
    crop = 160
    fps = 30
    [models.x3d_xs.options]          # optional build options of the zoo family (synthetic nets' widths)

The whole file is checked on load; errors name the file and the member.
Weights are checked when the pool is built (:func:`build_pool`): a member
without a checkpoint is an error naming it unless random weights are asked for.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from torch import nn

from condsel import models
from condsel._io import atomic_path, read_toml
from condsel.errors import names_the_file
from condsel.video.sampling import ClipSpec

log = logging.getLogger(__name__)

MEMBER_KEYS = {
    "arch", "checkpoint", "sha256", "num_classes", "clips", "crops", "frames", "stride", "crop", "fps", "options",
}
RANDOM_WEIGHTS_NOTE = "random weights (--random-weights): for latency and cost checks only, the outputs mean nothing"


@dataclass(frozen=True)
class PoolMember:
    """One member: zoo model ``arch`` (built with ``options``), its weights, and how it reads a video."""

    name: str
    arch: str
    clip: ClipSpec
    num_classes: int
    checkpoint: Path | None = None
    sha256: str | None = None
    options: Mapping = field(default_factory=dict)

    @property
    def spec(self) -> models.ModelSpec:
        return models.get_spec(self.arch)

    @property
    def views(self) -> int:
        return self.clip.views

    @property
    def mean(self) -> tuple[float, ...]:
        """Input normalisation the weights were trained with (per channel, on [0, 1] RGB)."""
        return tuple(self.spec.mean)

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(self.spec.std)

    @property
    def gflops_per_view(self) -> float:
        return models.gflops(self.arch, self.clip.num_frames, self.clip.size, self.num_classes, self.options)

    @property
    def gflops_per_video(self) -> float:
        """Multiply-adds of every test view (per window with per-clip extraction)."""
        return self.gflops_per_view * self.views

    def build(self, random_weights: bool = False) -> nn.Module:
        """The network in eval mode with its checkpoint's weights (checked against ``sha256`` if pinned).

        Without a checkpoint it is an error naming the member, unless
        ``random_weights`` (latency and cost checks).
        """
        if self.checkpoint is None:
            if not random_weights:
                raise ValueError(f"pool member {self.name!r} has no checkpoint (pass --random-weights for latency checks only)")
            return models.create_model(self.arch, self.num_classes, options=self.options)
        if self.sha256 is not None:
            self.checkpoint_sha256()
        return models.create_model(self.arch, self.num_classes, self.checkpoint, options=self.options)

    def checkpoint_sha256(self) -> str:
        """The checkpoint file's digest; an error naming the file if it differs from the pinned ``sha256``."""
        found = sha256_file(self.checkpoint)
        if self.sha256 is not None and found != self.sha256:
            raise ValueError(f"{self.checkpoint}: sha256 {found} differs from the pinned {self.sha256} (member {self.name!r})")
        return found

    def to_dict(self) -> dict:
        """JSON-able description (the checkpoint as a string)."""
        return {
            "name": self.name,
            "arch": self.arch,
            "options": dict(self.options),
            "clip": self.clip.to_dict(),
            "num_classes": self.num_classes,
            "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class PoolConfig:
    """A pool: its members in the order given, and the backbone that always runs."""

    backbone: str
    members: tuple[PoolMember, ...]
    path: Path | None = None  # the file it was read from, for messages

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def member(self, name: str) -> PoolMember:
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(f"{self.path}: no member {name!r} (members: {', '.join(self.names)})")

    @property
    def num_classes(self) -> int:
        widths = {m.num_classes for m in self.members}
        if len(widths) != 1:
            raise ValueError(f"{self.path}: members disagree on num_classes ({sorted(widths)}); a table needs one label space")
        return widths.pop()

    @property
    def gflops(self) -> dict[str, float]:
        """Per-video multiply-adds (1e9) of each member, all test views."""
        return {m.name: m.gflops_per_video for m in self.members}

    @property
    def decode_short_side(self) -> int:
        """Decode at the largest size any member reads, so no member upsamples."""
        return max(m.clip.size for m in self.members)

    def pinned(self) -> PoolConfig:
        """The same pool with every checkpoint's sha256 recorded (and checked where already pinned)."""
        members = tuple(m if m.checkpoint is None else replace(m, sha256=m.checkpoint_sha256()) for m in self.members)
        return replace(self, members=members)


def sha256_file(path: Path) -> str:
    try:
        digest = hashlib.sha256()
        with Path(path).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as e:
        raise ValueError(f"{path}: cannot read checkpoint: {e}") from e
    return digest.hexdigest()


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
    sha256 = table.get("sha256")
    if sha256 is not None and (checkpoint is None or not isinstance(sha256, str) or len(sha256) != 64):
        raise ValueError(f"{path}: {where} sha256 must be a 64-digit hex digest, beside a checkpoint")
    options = table.get("options", {})
    if not isinstance(options, dict):
        raise ValueError(f"{path}: {where} options must be a table of build options")
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
    clip = ClipSpec(ints["frames"], ints["stride"], ints["crop"], ints["clips"], ints["crops"], float(fps))
    member = PoolMember(name, arch, clip, ints["num_classes"], checkpoint, sha256, options)
    if options:  # counting builds on the meta device: bad options fail here, naming the member
        try:
            models.gflops(arch, clip.num_frames, clip.size, member.num_classes, options)
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"{path}: {where} cannot be built: {e}") from e
    return member


@names_the_file
def load_pool_config(path: str | Path) -> PoolConfig:
    """Parse and validate a pool config file."""
    path = Path(path)
    doc = read_toml(path, "pool config")
    unknown = sorted(set(doc) - {"backbone", "models"})
    if unknown:
        raise ValueError(f"{path}: unknown top-level key(s) {unknown}; expected 'backbone' and [models.*]")
    tables = doc.get("models")
    if not isinstance(tables, dict) or not tables:
        raise ValueError(f"{path}: no [models.<name>] tables")
    members = tuple(_member(path, name, table) for name, table in tables.items())
    backbone = doc.get("backbone")
    if not isinstance(backbone, str) or backbone not in tables:
        raise ValueError(f"{path}: backbone = {backbone!r} must name one of the models ({', '.join(tables)})")
    return PoolConfig(backbone=backbone, members=members, path=path)


def write_pool_config(config: PoolConfig, path: str | Path, relative_to: Path | None = None) -> Path:
    """Write ``config`` as a pool config file that :func:`load_pool_config` reads back to the same pool.

    Checkpoints under ``relative_to`` are written relative to the file (a run
    directory that moves keeps working); others stay absolute.
    """
    path = Path(path)
    lines = [f"backbone = {json.dumps(config.backbone)}"]
    for m in config.members:
        lines += ["", f"[models.{json.dumps(m.name)}]", f"arch = {json.dumps(m.arch)}"]
        if m.checkpoint is not None:
            checkpoint = Path(m.checkpoint).resolve()
            if relative_to is not None and checkpoint.is_relative_to(Path(relative_to).resolve()):
                checkpoint = checkpoint.relative_to(path.parent.resolve())
            lines.append(f"checkpoint = {json.dumps(str(checkpoint))}")
        if m.sha256 is not None:
            lines.append(f"sha256 = {json.dumps(m.sha256)}")
        c = m.clip
        values = {"num_classes": m.num_classes, "clips": c.clips, "crops": c.crops, "frames": c.num_frames,
                  "stride": c.stride, "crop": c.size, "fps": float(c.target_fps)}
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        if m.options:
            lines += ["", f"[models.{json.dumps(m.name)}.options]"]
            lines += [f"{key} = {json.dumps(value)}" for key, value in m.options.items()]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def check_weights(config: PoolConfig, random_weights: bool = False, files: bool = True) -> None:
    """Raise one error naming every member without a checkpoint (unless ``random_weights``) or, with ``files``, whose file is missing."""
    problems = []
    for m in config.members:
        if m.checkpoint is None and not random_weights:
            problems.append(f"member {m.name!r} has no checkpoint")
        elif m.checkpoint is not None and files and not m.checkpoint.is_file():
            problems.append(f"member {m.name!r}: checkpoint {m.checkpoint} not found")
    if problems:
        hint = " (pass --random-weights for latency checks only)" if any("no checkpoint" in p for p in problems) else ""
        raise ValueError(f"{config.path}: cannot build the pool: " + "; ".join(problems) + hint)
    if random_weights and uses_random_weights(config):
        log.warning("%s: %s", config.path or "pool", RANDOM_WEIGHTS_NOTE)


def build_pool(config: PoolConfig, random_weights: bool = False) -> dict[str, nn.Module]:
    """Every member's network in eval mode, weights loaded, keyed by member name.

    Every member's weights are checked before any network is built, so one
    message lists every missing checkpoint. With ``random_weights`` members
    lacking a checkpoint are randomly initialised, and a warning says so.
    """
    check_weights(config, random_weights)
    return {m.name: m.build(random_weights) for m in config.members}


def uses_random_weights(config: PoolConfig) -> bool:
    return any(m.checkpoint is None for m in config.members)
