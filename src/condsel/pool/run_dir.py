"""A run directory: everything ``condsel predict`` needs, and nothing pickled.

Layout::

    run.json             format, classes, pool order, selector, default
                         threshold and the calibration curve
    pool.toml            the pool config (condsel.pool.config), checkpoints
                         relative to the run directory and sha256-pinned
    costs.toml           [gflops] per member, for ``condsel table --costs``
    models/<name>.pt     each member's state_dict (torch.save)
    selector.pt          the selector (condsel.selection.selector.Selector.save)

Checkpoints are read with ``torch.load(weights_only=True)``. The calibration
curve is the selector's threshold sweep on the split it was trained on (mean
GFLOPs and top-1 per threshold); ``--budget`` picks a threshold from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from condsel._io import atomic_path, write_json
from condsel.models.costs import FLOP_CONVENTION
from condsel.selection.curves import selection_costs
from condsel.pool.config import PoolConfig, PoolMember, build_pool, load_pool_config, write_pool_config
from condsel.selection.selector import Selector

RUN_FORMAT = "condsel-run/1"
RUN_FILE = "run.json"
POOL_FILE = "pool.toml"


@dataclass
class Run:
    root: Path
    pool: PoolConfig
    models: dict[str, nn.Module]  # resident networks, eval mode
    order: list[str]  # pool order: the backbone, then the others by ascending cost
    selector: Selector
    selector_gflops: float
    class_names: list[str]
    threshold: float
    calibration: list[dict]  # [{"threshold", "gflops", "top1"}], thresholds ascending

    @property
    def backbone(self) -> str:
        return self.order[0]

    @property
    def members(self) -> dict[str, PoolMember]:
        return {m.name: m for m in self.pool.members}

    @property
    def gflops(self) -> dict[str, float]:
        """Per video, views included."""
        return self.pool.gflops

    @property
    def decode_short_side(self) -> int:
        return self.pool.decode_short_side

    @property
    def selection_costs(self) -> np.ndarray:
        """GFLOPs per video when each model of ``order`` is chosen (backbone and selector included)."""
        return selection_costs(np.array([self.gflops[m] for m in self.order]), self.selector_gflops)

    def load_model(self, name: str) -> nn.Module:
        """A fresh copy of member ``name`` from its checkpoint (for the load-per-selection mode)."""
        return self.pool.member(name).build()

    def threshold_for_budget(self, budget: float) -> float:
        """The threshold of the costliest calibration point whose mean GFLOPs stay within ``budget``."""
        within = [p for p in self.calibration if p["gflops"] <= budget + 1e-12]
        if not within:
            cheapest = min(p["gflops"] for p in self.calibration)
            raise ValueError(f"budget {budget} GFLOPs is below the cheapest operating point ({cheapest:.4g} GFLOPs, backbone + selector)")
        return max(within, key=lambda p: (p["gflops"], -p["threshold"]))["threshold"]


def save_run(
    root: str | Path,
    pool: PoolConfig,
    models: dict[str, nn.Module],
    order: list[str],
    selector: Selector,
    class_names: list[str],
    threshold: float,
    calibration: list[dict],
    notes: dict | None = None,
) -> Path:
    """Write a run directory, the networks' weights included; ``run.json`` goes last, so a run with one is complete."""
    root = Path(root)
    (root / "models").mkdir(parents=True, exist_ok=True)
    for m in pool.members:
        _save_state_dict(models[m.name], root / "models" / f"{m.name}.pt")
    saved = PoolConfig(
        pool.backbone, tuple(replace(m, checkpoint=root / "models" / f"{m.name}.pt", sha256=None) for m in pool.members)
    ).pinned()
    write_pool_config(saved, root / POOL_FILE, relative_to=root)
    selector.save(root / "selector.pt")
    gflops = pool.gflops
    costs = "".join(f"{m.name} = {gflops[m.name]!r}\n" for m in pool.members)
    with atomic_path(root / "costs.toml") as tmp:
        tmp.write_text(f"# {FLOP_CONVENTION}, per video, all test views\n[gflops]\n{costs}", encoding="utf-8")
    write_json(
        root / RUN_FILE,
        {
            "format": RUN_FORMAT,
            "flop_convention": FLOP_CONVENTION,
            "classes": list(class_names),
            "pool": POOL_FILE,
            "pool_order": list(order),
            "backbone": order[0],
            "selector": {"checkpoint": "selector.pt", "gflops": selector.gflops(), "inputs": selector.inputs},
            "threshold": float(threshold),
            "calibration": calibration,
            "notes": notes or {},
        },
    )
    return root


def _read_doc(root: Path) -> tuple[Path, dict]:
    path = root / RUN_FILE
    if not path.is_file():
        raise ValueError(f"{root}: not a run directory (no {RUN_FILE})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: malformed run description: {e}") from e
    if not isinstance(doc, dict) or doc.get("format") != RUN_FORMAT:
        raise ValueError(f"{path}: unknown format {doc.get('format') if isinstance(doc, dict) else doc!r}, expected {RUN_FORMAT!r}")
    return path, doc


def read_run_pool(root: str | Path) -> tuple[PoolConfig, list[str]]:
    """A run directory's pool and class names, without building anything."""
    root = Path(root)
    path, doc = _read_doc(root)
    try:
        pool_file, class_names = root / doc["pool"], [str(c) for c in doc["classes"]]
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: malformed run description: {e}") from e
    return load_pool_config(pool_file), class_names


def load_run(root: str | Path) -> Run:
    """Read a run directory; errors name the file at fault."""
    root = Path(root)
    path, doc = _read_doc(root)
    try:
        pool_file = root / doc["pool"]
        order = list(doc["pool_order"])
        class_names = list(doc["classes"])
        threshold = float(doc["threshold"])
        calibration = sorted(doc["calibration"], key=lambda p: p["threshold"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: malformed run description: {e}") from e
    pool = load_pool_config(pool_file)
    if sorted(order) != sorted(pool.names):
        raise ValueError(f"{path}: pool_order {order} does not list the members of {pool_file} {sorted(pool.names)}")
    models = build_pool(pool)
    selector = Selector.load(root / "selector.pt")
    return Run(
        root=root,
        pool=pool,
        models=models,
        order=order,
        selector=selector,
        selector_gflops=selector.gflops(),
        class_names=class_names,
        threshold=threshold,
        calibration=calibration,
    )


def _save_state_dict(model: nn.Module, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)
