"""A run directory: everything ``condsel predict`` needs, and nothing pickled.

Layout::

    run.json             format, classes, members (architecture, clip sampling,
                         GFLOPs per video, checkpoint), backbone, selector,
                         default threshold and the calibration curve
    costs.toml           [gflops] per member, for ``condsel table --costs``
    models/<name>.pt     each member's state_dict (torch.save)
    selector.pt          the selector (condsel.selection.selector.Selector.save)

Checkpoints are read with ``torch.load(weights_only=True)``. The calibration
curve is the selector's threshold sweep on the split it was trained on (mean
GFLOPs and top-1 per threshold); ``--budget`` picks a threshold from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from condsel._io import atomic_path, write_json
from condsel.models.costs import FLOP_CONVENTION
from condsel.selection.curves import selection_costs
from condsel.models.checkpoints import load_checked, read_state_dict
from condsel.pool.members import PoolMember
from condsel.selection.selector import Selector

RUN_FORMAT = "condsel-run/1"
RUN_FILE = "run.json"


@dataclass
class Run:
    root: Path
    members: dict[str, PoolMember]
    models: dict[str, nn.Module]  # resident networks, eval mode
    order: list[str]  # pool order: the backbone, then the others by ascending cost
    gflops: dict[str, float]  # per video, views included
    selector: Selector
    selector_gflops: float
    class_names: list[str]
    threshold: float
    calibration: list[dict]  # [{"threshold", "gflops", "top1"}], thresholds ascending
    decode_short_side: int

    @property
    def backbone(self) -> str:
        return self.order[0]

    @property
    def selection_costs(self) -> np.ndarray:
        """GFLOPs per video when each model of ``order`` is chosen (backbone and selector included)."""
        return selection_costs(np.array([self.gflops[m] for m in self.order]), self.selector_gflops)

    def checkpoint(self, name: str) -> Path:
        return self.root / "models" / f"{name}.pt"

    def load_model(self, name: str) -> nn.Module:
        """A fresh copy of member ``name`` from its checkpoint (for the load-per-selection mode)."""
        return load_member(self.members[name], len(self.class_names), self.checkpoint(name))

    def operating_threshold(self, threshold: float | None = None, budget: float | None = None) -> float:
        """``threshold`` if given (checked), else the threshold for ``budget``, else the run's default."""
        if threshold is not None:
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"--threshold {threshold} is outside [0, 1]")
            return threshold
        if budget is not None:
            return self.threshold_for_budget(budget)
        return self.threshold

    def threshold_for_budget(self, budget: float) -> float:
        """The threshold of the costliest calibration point whose mean GFLOPs stay within ``budget``."""
        within = [p for p in self.calibration if p["gflops"] <= budget + 1e-12]
        if not within:
            cheapest = min(p["gflops"] for p in self.calibration)
            raise ValueError(f"budget {budget} GFLOPs is below the cheapest operating point ({cheapest:.4g} GFLOPs, backbone + selector)")
        return max(within, key=lambda p: (p["gflops"], -p["threshold"]))["threshold"]


def load_member(member: PoolMember, num_classes: int, checkpoint: Path) -> nn.Module:
    model = member.build(num_classes)
    load_checked(model, read_state_dict(checkpoint), str(checkpoint))
    return model.eval()


def save_run(
    root: str | Path,
    members: list[PoolMember],
    models: dict[str, nn.Module],
    order: list[str],
    gflops: dict[str, float],
    selector: Selector,
    class_names: list[str],
    threshold: float,
    calibration: list[dict],
    decode_short_side: int,
    notes: dict | None = None,
) -> Path:
    """Write a run directory; ``run.json`` goes last, so a run with a ``run.json`` is complete."""
    root = Path(root)
    (root / "models").mkdir(parents=True, exist_ok=True)
    for m in members:
        _save_state_dict(models[m.name], root / "models" / f"{m.name}.pt")
    selector.save(root / "selector.pt")
    costs = "".join(f"{m.name} = {gflops[m.name]!r}\n" for m in members)
    with atomic_path(root / "costs.toml") as tmp:
        tmp.write_text(f"# {FLOP_CONVENTION}, per video, all test views\n[gflops]\n{costs}", encoding="utf-8")
    write_json(
        root / RUN_FILE,
        {
            "format": RUN_FORMAT,
            "flop_convention": FLOP_CONVENTION,
            "classes": list(class_names),
            "members": [{**m.to_dict(), "gflops_per_video": gflops[m.name], "checkpoint": f"models/{m.name}.pt"} for m in members],
            "pool_order": list(order),
            "backbone": order[0],
            "selector": {"checkpoint": "selector.pt", "gflops": selector.gflops(), "inputs": selector.inputs},
            "threshold": float(threshold),
            "calibration": calibration,
            "decode_short_side": int(decode_short_side),
            "notes": notes or {},
        },
    )
    return root


def load_run(root: str | Path) -> Run:
    """Read a run directory; errors name the file at fault."""
    root = Path(root)
    path = root / RUN_FILE
    if not path.is_file():
        raise ValueError(f"{root}: not a run directory (no {RUN_FILE})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != RUN_FORMAT:
            raise ValueError(f"unknown format {doc.get('format')!r}, expected {RUN_FORMAT!r}")
        members = {d["name"]: PoolMember.from_dict(d) for d in doc["members"]}
        gflops = {d["name"]: float(d["gflops_per_video"]) for d in doc["members"]}
        order = list(doc["pool_order"])
        if sorted(order) != sorted(members):
            raise ValueError(f"pool_order {order} does not list the members {sorted(members)}")
        class_names = list(doc["classes"])
        threshold = float(doc["threshold"])
        calibration = sorted(doc["calibration"], key=lambda p: p["threshold"])
        short_side = int(doc["decode_short_side"])
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: malformed run description: {e}") from e
    models = {name: load_member(m, len(class_names), root / "models" / f"{name}.pt") for name, m in members.items()}
    selector = Selector.load(root / "selector.pt")
    return Run(
        root=root,
        members=members,
        models=models,
        order=order,
        gflops=gflops,
        selector=selector,
        selector_gflops=selector.gflops(),
        class_names=class_names,
        threshold=threshold,
        calibration=calibration,
        decode_short_side=short_side,
    )


def _save_state_dict(model: nn.Module, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)
