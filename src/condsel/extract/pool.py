"""The pool to extract, from a pool config or a run directory, with its networks built.

Both sources give a :class:`condsel.pool.config.PoolConfig`. Its members'
description (how each reads a video, its normalisation, its counted cost)
and the checksums of the weights are the pool's identity, which a store
records so that a re-run can never append the outputs of a different pool.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from condsel.extract.store import Store
from condsel.pool.config import PoolConfig, build_pool, load_pool_config, uses_random_weights

# what a member's description must agree on between the pool and the store that was extracted with it
IDENTITY_KEYS = ("arch", "options", "clip", "num_classes", "sha256")


@dataclass(frozen=True)
class ExtractionPool:
    source: Path
    config: PoolConfig  # checkpoints sha256-pinned
    models: dict[str, nn.Module]
    class_names: list[str] | None

    @property
    def members(self):
        return self.config.members

    @property
    def backbone(self) -> str:
        return self.config.backbone

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def random_weights(self) -> bool:
        return uses_random_weights(self.config)

    def describe(self) -> dict:
        """JSON-able description, without the networks."""
        return {
            "source": str(self.source),
            "backbone": self.backbone,
            "members": [
                {**m.to_dict(), "mean": list(m.mean), "std": list(m.std), "gflops": m.gflops_per_video}
                for m in self.members
            ],
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "random_weights": self.random_weights,
        }

    def identity(self, settings: dict) -> str:
        """A checksum of everything that determines the stored numbers (not where the pool or its weights live)."""
        described = self.describe()
        del described["source"]
        for m in described["members"]:
            del m["checkpoint"]
        text = json.dumps({"pool": described, "settings": settings}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_pool(
    source: str | Path, class_names_file: str | Path | None = None, random_weights: bool = False
) -> ExtractionPool:
    """A pool config (``.toml``) or a run directory, with every network built and in eval mode.

    A member without a checkpoint is an error naming it, unless
    ``random_weights`` (latency benchmarks only).
    """
    from condsel.datasets.manifests import read_class_names
    from condsel.pool.run_dir import read_run_pool

    source = Path(source)
    if source.is_dir():
        if class_names_file is not None:
            raise ValueError(f"{source}: a run directory carries its own class names; drop --classes")
        config, class_names = read_run_pool(source)
    else:
        config, class_names = load_pool_config(source), None
    for m in config.members:
        if m.spec.modality != "rgb":
            raise ValueError(f"{config.path}: member {m.name} reads {m.spec.modality}; condsel extract feeds decoded RGB frames only")
    num_classes = config.num_classes
    if class_names_file is not None:
        class_names = read_class_names(class_names_file)
        if len(class_names) != num_classes:
            raise ValueError(f"{class_names_file}: {len(class_names)} class names for a pool of {num_classes} classes")
    models = build_pool(config, random_weights)  # names every member without weights before hashing any file
    return ExtractionPool(source, config.pinned(), models, class_names)


def check_store_matches(pool: PoolConfig, store: Store) -> None:
    """The store must hold whole videos scored by exactly this pool (members, views, weights).

    Then what ``predict`` computes online is what a policy fitted on the store saw.
    """
    if store.meta["settings"].get("per_clip_seconds") is not None:
        raise ValueError(f"{store.root}: a per-clip store (windows of untrimmed videos); fit needs whole-video scores")
    stored = {m["name"]: m for m in store.meta["pool"]["members"]}
    if sorted(stored) != sorted(pool.names):
        raise ValueError(f"{store.root}: holds members {sorted(stored)}, but {pool.path} has {sorted(pool.names)}")
    for member in pool.members:
        mine, theirs = member.to_dict(), stored[member.name]
        for key in IDENTITY_KEYS:
            if mine[key] != theirs.get(key):
                raise ValueError(
                    f"{store.root}: member {member.name!r} was extracted with {key} = {theirs.get(key)!r}, "
                    f"but {pool.path} has {mine[key]!r}; extract again with this pool"
                )
