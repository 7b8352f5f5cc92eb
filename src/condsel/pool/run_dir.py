"""A run directory: everything ``predict``, ``serve``, ``report`` and ``analyze`` need, and nothing pickled.

One format, written by ``condsel fit`` (a pool config and an extraction
store) and by ``condsel demo`` (its synthetic pool)::

    run.json          format, classes, the policy, the views' aggregation, the
                      operating point with its expected GFLOPs and accuracy,
                      the calibration curve, cost_unit ("gflops", or "ms" when
                      fitted on profiled costs: then the curve and the operating
                      point are keyed "ms"), random_weights, notes, provenance
    pool.toml         the pool config (condsel.pool.config), every checkpoint
                      resolved and sha256-pinned
    policy/           the fitted policy (condsel.selection.method.policies, Policy.save)
    costs.toml        [gflops] per member (counted), for ``condsel table --costs``
    models/<name>.pt  weights trained in the run (the demo); ``fit`` points at
                      the user's own checkpoints instead

Checkpoints are read with ``torch.load(weights_only=True)``. The calibration
curve (mean GFLOPs and accuracy per threshold) is measured on predictions the
policy did not train on where the writer had them (``fit``: cross-validation);
``--budget`` picks a threshold from it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from condsel._io import atomic_path, write_json
from condsel.models.costs import FLOP_CONVENTION, UNIT_LABELS
from condsel.pool.config import (
    RANDOM_WEIGHTS_NOTE,
    PoolConfig,
    PoolMember,
    build_pool,
    load_pool_config,
    uses_random_weights,
    write_pool_config,
)
from condsel.pool.device import CPU_FP32, Placement
from condsel.pool.views import ViewPlan
from condsel.selection.method.policies import Policy, load_policy

log = logging.getLogger(__name__)

RUN_FORMAT = "condsel-run/2"
RUN_FILE = "run.json"
POOL_FILE = "pool.toml"
POLICY_DIR = "policy"


@dataclass
class Run:
    root: Path
    pool: PoolConfig
    models: dict[str, nn.Module]  # resident networks, eval mode, on placement's device
    policy: Policy
    class_names: list[str]
    threshold: float  # the default operating point
    calibration: list[dict]  # [{"threshold", "gflops" | "ms", "top1" | "map"}], thresholds ascending
    aggregate: str  # how a member's views are combined (as in the store the policy was fitted on)
    random_weights: bool
    cost_unit: str = "gflops"  # what the policy was fitted on: counted GFLOPs, or profiled ms (fit --costs MS.toml)
    placement: Placement = CPU_FP32  # where and at what precision the members run (predict/serve --device, --precision)

    @property
    def backbone(self) -> str:
        return self.pool.backbone

    @property
    def order(self) -> list[str]:
        """The members the policy may run, in the order it considers them."""
        return list(self.policy.members_)

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

    def plan(self, names: list[str] | None = None) -> ViewPlan:
        """How members ``names`` (default: all) read a video; decoded at the whole pool's size."""
        names = self.order if names is None else names
        return ViewPlan({n: self.members[n].clip for n in names}, decode_size=self.decode_short_side)

    def load_model(self, name: str) -> nn.Module:
        """A fresh copy of member ``name`` from its checkpoint, on the run's device (for the load-per-selection mode)."""
        return self.placement.place(self.pool.member(name).build(self.random_weights))

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
        """The threshold of the most accurate calibration point within ``budget`` mean cost per video, in the run's unit."""
        return point_within_budget(self.calibration, budget, self.cost_unit)["threshold"]

    def video_costs(self, ran: list[str]) -> dict[str, float]:
        """``{"gflops": ...}`` of one video whose policy ran members ``ran``, plus ``"ms"`` in a run fitted on ms.

        GFLOPs are always the counted ones (members + the policy's own network);
        ms are the profiled members' (the policy's own network is not profiled).
        """
        policy = self.policy
        if self.cost_unit != "ms":
            return {"gflops": policy.video_gflops(ran)}
        return {"gflops": sum(self.gflops[m] for m in ran) + policy.overhead_gflops_, "ms": sum(policy.gflops_[m] for m in ran)}


def point_within_budget(points: list[dict], budget: float, unit: str = "gflops") -> dict:
    """The most accurate of ``points`` whose mean cost (key ``unit``) stays within ``budget``; the cheaper, then lower threshold, on ties."""
    within = [p for p in points if p[unit] <= budget + 1e-12]
    if not within:
        cheapest = min(p[unit] for p in points)
        label = UNIT_LABELS[unit]
        raise ValueError(f"budget {budget} {label} is below the cheapest operating point ({cheapest:.4g} {label})")
    metric = "map" if "map" in within[0] else "top1"
    return max(within, key=lambda p: (p[metric], -p[unit], -p["threshold"]))


def save_run(
    root: str | Path,
    pool: PoolConfig,
    policy: Policy,
    class_names: list[str],
    threshold: float,
    calibration: list[dict],
    aggregate: str,
    models: dict[str, nn.Module] | None = None,
    operating_point: dict | None = None,
    notes: dict | None = None,
    cost_unit: str = "gflops",
) -> Path:
    """Write a run directory; ``run.json`` goes last, so a run with one is complete.

    With ``models`` (networks trained in the run), their weights are saved
    under ``models/`` and the pool points there; otherwise the pool keeps its
    own checkpoints. Either way every checkpoint is pinned by its sha256.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if models is not None:
        for m in pool.members:
            with atomic_path(root / "models" / f"{m.name}.pt") as tmp:
                torch.save(models[m.name].state_dict(), tmp)
        pool = replace(pool, members=tuple(replace(m, checkpoint=root / "models" / f"{m.name}.pt", sha256=None) for m in pool.members))
    write_pool_config(pool.pinned(), root / POOL_FILE, relative_to=root)
    policy.save(root / POLICY_DIR)
    gflops = pool.gflops
    costs = "".join(f"{json.dumps(m.name)} = {gflops[m.name]!r}\n" for m in pool.members)
    with atomic_path(root / "costs.toml") as tmp:
        tmp.write_text(f"# {FLOP_CONVENTION}, per video, all test views\n[gflops]\n{costs}", encoding="utf-8")
    random_weights = uses_random_weights(pool)
    write_json(
        root / RUN_FILE,
        {
            "format": RUN_FORMAT,
            "flop_convention": FLOP_CONVENTION,
            "classes": list(class_names),
            "pool": POOL_FILE,
            "backbone": pool.backbone,
            "policy": {"directory": POLICY_DIR, "name": policy.name, "members": list(policy.members_),
                       "overhead_gflops": float(policy.overhead_gflops_)},
            "aggregate": aggregate,
            "threshold": float(threshold),
            "operating_point": operating_point or {},
            "calibration": calibration,
            "cost_unit": cost_unit,
            "random_weights": random_weights,
            **({"random_weights_note": RANDOM_WEIGHTS_NOTE} if random_weights else {}),
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
    found = doc.get("format") if isinstance(doc, dict) else None
    if found != RUN_FORMAT:
        raise ValueError(f"{path}: unknown format {found!r}, expected {RUN_FORMAT!r}")
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


def load_run(root: str | Path, members: Sequence[str] | None = None, placement: Placement = CPU_FP32) -> Run:
    """Read a run directory (from ``condsel fit`` or ``condsel demo``) and build its networks; errors name the file at fault.

    Parameters
    ----------
    root : path
        The run directory.
    members : sequence of str, optional
        Build only these members' networks (a serve replica holds one member;
        ``[]`` builds none). By default, every member the policy may run.
    placement : Placement, optional
        The device the networks are moved to and the precision of their
        forward passes (default: CPU, fp32).

    Returns
    -------
    Run
        The pool with its networks, the fitted policy and its operating points.

    Examples
    --------
    >>> run = load_run("demo_out/synthetic/run")  # doctest: +SKIP
    >>> run.policy.name, run.threshold_for_budget(1.0)  # doctest: +SKIP
    """
    root = Path(root)
    path, doc = _read_doc(root)
    try:
        pool_file = root / doc["pool"]
        class_names = [str(c) for c in doc["classes"]]
        threshold = float(doc["threshold"])
        calibration = sorted(doc["calibration"], key=lambda p: p["threshold"])
        aggregate = str(doc["aggregate"])
        random_weights = bool(doc["random_weights"])
        cost_unit = str(doc.get("cost_unit", "gflops"))  # runs written before ms costs were GFLOPs
        policy_dir = root / doc["policy"]["directory"]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: malformed run description: {e}") from e
    pool = load_pool_config(pool_file)
    policy = load_policy(policy_dir)
    unknown = sorted(set(policy.members_) - set(pool.names))
    if unknown:
        raise ValueError(f"{policy_dir}: the policy runs {unknown}, which {pool_file} does not have")
    if random_weights:
        log.warning("%s: %s", root, RANDOM_WEIGHTS_NOTE)
    wanted = policy.members_ if members is None else members
    running = replace(pool, members=tuple(m for m in pool.members if m.name in wanted))
    return Run(
        root=root,
        pool=pool,
        models={name: placement.place(model) for name, model in build_pool(running, random_weights).items()},
        policy=policy,
        class_names=class_names,
        threshold=threshold,
        calibration=calibration,
        aggregate=aggregate,
        random_weights=random_weights,
        cost_unit=cost_unit,
        placement=placement,
    )
