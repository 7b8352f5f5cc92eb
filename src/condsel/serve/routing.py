"""What the service decides per video, without Ray: which members run, and the answer.

A *served pool* is what the ingress holds. It exposes the policy protocol's
online half (``next_members`` / the final answer, which carries the
``threshold`` used and its ``cost`` per unit), the frames to decode, each
member's ``clips`` (how it samples), the default ``threshold`` and a
description for ``GET /v1/models``; ``controller(options)`` where it can hold
a budget (``condsel.serve.control``). ``RunPool`` adapts a run directory and its
fitted policy, so the service answers exactly what ``condsel predict``
answers on the same file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
from torch import nn

from condsel.errors import CondselError
from condsel.models.costs import FLOP_CONVENTION
from condsel.pool.config import PoolMember
from condsel.pool.predict import decode_for, make_prediction
from condsel.pool.run_dir import Run, load_run
from condsel.serve.config import ServeOptions
from condsel.serve.control import BudgetController, ControlSettings, OperatingCurve
from condsel.video.decode import DecodedVideo

MemberCall = Callable[[str, DecodedVideo], Awaitable[np.ndarray]]
MemberLoader = Callable[[], tuple[PoolMember, nn.Module, str]]


class RunPool:
    """A run directory's pool and fitted policy, served: whatever the policy asks for, until it stops.

    The paper's selector runs the backbone, then its choice; a cascade runs
    members in order and fuses them. Answers are ``condsel predict``'s.

    Parameters
    ----------
    run : Run
        A loaded run directory.
    threshold : float
        The operating threshold used when a request does not give one.
    costs_ms : dict, optional
        Profiled milliseconds per video of each member (``condsel profile``):
        answers then carry their cost in ms as well as in GFLOPs.
    precision : str, optional
        The members' forward precision (``--precision``); answers say it where
        it is reduced, as ``condsel predict`` does.
    """

    def __init__(self, run: Run, threshold: float, costs_ms: Mapping[str, float] | None = None, precision: str = "fp32"):
        self.run = run
        self.threshold = float(threshold)
        self.precision = precision
        self.clips = {name: run.members[name].clip for name in run.order}
        missing = sorted(set(run.order) - set(costs_ms or run.order))
        if missing:
            raise CondselError(f"--costs: no [ms] cost for member(s) {missing} of {run.root}")
        self.costs_ms = None if costs_ms is None else {m: float(costs_ms[m]) for m in run.order}

    @classmethod
    def from_dir(cls, root: str | Path, threshold: float | None = None, costs_ms: Mapping[str, float] | None = None,
                 precision: str = "fp32") -> RunPool:
        run = load_run(root, [])  # the ingress decides and answers; the members' networks are loaded where they run
        return cls(run, run.threshold if threshold is None else threshold, costs_ms, precision)

    @property
    def members(self) -> list[str]:
        return list(self.run.order)

    def decode(self, path: str | Path) -> DecodedVideo:
        """Decode, once, the frames that every member the policy may run needs."""
        return decode_for(self.run, path)

    def next_members(self, outputs: Mapping[str, np.ndarray], threshold: float, video: str | None = None) -> list[str]:
        return self.run.policy.next_members(outputs, threshold, video)

    def answer(self, video: str, outputs: Mapping[str, np.ndarray], threshold: float, seconds: float) -> dict:
        """The ``condsel predict --json`` object for a video whose members have all run (in ``outputs`` order),
        plus the ``threshold`` it was served at and its ``cost`` per unit (``ms`` with profiled costs)."""
        ran = list(outputs)
        prediction = make_prediction(self.run, video, self.run.policy.final_scores(outputs), ran, seconds)
        answer = replace(prediction, precision=self.precision).to_dict()
        cost = {"gflops": answer["gflops"]}
        if self.costs_ms is not None:
            cost["ms"] = sum(self.costs_ms[m] for m in ran)
        elif "ms" in answer:
            cost["ms"] = answer["ms"]
        return {**answer, "threshold": float(threshold), "cost": cost}

    def operating_curve(self, unit: str) -> OperatingCurve:
        """The run's calibration curve (threshold -> expected cost per video) in ``unit``.

        A run fitted on GFLOPs has no ms curve: its GFLOPs curve scaled by the
        pool's ms per GFLOP stands in, a prior that the controller's feedback
        on realised ms corrects.
        """
        points = self.run.calibration
        if points and unit in points[0]:
            return OperatingCurve.from_points(points, unit)
        if unit == "gflops":
            raise CondselError(f"{self.run.root} was fitted on ms costs, so its calibration curve is in ms: use --target-ms")
        if self.costs_ms is None:
            raise CondselError("--target-ms needs member costs in ms: --costs FILE.toml with an [ms] table (condsel profile)")
        scale = sum(self.costs_ms.values()) / sum(self.run.gflops[m] for m in self.run.order)
        return OperatingCurve.from_points([{"threshold": p["threshold"], unit: scale * p["gflops"]} for p in points], unit)

    def controller(self, options: ServeOptions) -> BudgetController | None:
        """The budget controller ``options`` ask for (None without --target-gflops, --target-ms or --slo-ms)."""
        if not options.controlled:
            return None
        unit = "ms" if options.target_ms is not None else "gflops"
        curve = self.operating_curve(unit)
        target = options.target_ms if unit == "ms" else options.target_gflops
        if target is not None:
            curve.check_target(target, f"--target-{unit}")
        slo_s = None if options.slo_ms is None else options.slo_ms / 1000.0
        return BudgetController(curve, target, self.threshold, ControlSettings(window=options.window, slo_s=slo_s))

    def describe(self) -> dict:
        """The pool for ``GET /v1/models``: members in the policy's order with their GFLOPs per video."""
        run, policy = self.run, self.run.policy
        return {
            "policy": policy.name,
            "threshold": self.threshold,
            "backbone": run.backbone,
            "pool": [{"name": m, "gflops": run.gflops[m], **({} if self.costs_ms is None else {"ms": self.costs_ms[m]})}
                     for m in run.order],
            "policy_gflops": policy.overhead_gflops_,
            "classes": len(run.class_names),
            "random_weights": run.random_weights,
            "precision": self.precision,
            "flop_convention": FLOP_CONVENTION,
        }


def run_member_loader(root: str | Path, name: str) -> tuple[PoolMember, nn.Module, str]:
    """Member ``name`` of a run directory, its network and the run's view aggregation (for a member deployment)."""
    run = load_run(root, [name])
    return run.members[name], run.models[name], run.aggregate


def run_member_loaders(root: str | Path) -> dict[str, MemberLoader]:
    """One picklable loader per member the run's policy may run, in its order."""
    return {name: partial(run_member_loader, str(root), name) for name in load_run(root, []).order}


async def execute(pool, call: MemberCall, video: DecodedVideo, threshold: float, name: str | None = None) -> dict[str, np.ndarray]:
    """Run the members ``pool.next_members`` asks for until it says stop; members asked together run concurrently.

    The asynchronous mirror of ``condsel.pool.predict.execute``: ``call(member,
    video)`` returns that member's class logits for the video; ``name`` (the
    uploaded file's name) is what a policy that mixes choices draws from.
    """
    outputs: dict[str, np.ndarray] = {}
    while names := pool.next_members(outputs, threshold, name):
        repeated = [n for n in names if n in outputs]
        if repeated:
            raise RuntimeError(f"the policy asked again for members that already ran: {repeated}")
        logits = await asyncio.gather(*(call(n, video) for n in names))
        outputs.update(zip(names, logits))
    return outputs
