"""What the service decides per video, without Ray: which members run, and the answer.

A *served pool* is what the ingress holds. It exposes the policy protocol's
online half (``next_members`` / the final answer), the frames to decode, each
member's ``clips`` (how it samples), the default ``threshold`` and a
description for ``GET /v1/models``. ``RunPool`` adapts a run directory, so
the service answers exactly what ``condsel predict`` answers on the same file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path

import numpy as np
from torch import nn

from condsel.models.costs import FLOP_CONVENTION
from condsel.pool.predict import _prediction, decode_for
from condsel.pool.run_dir import Run, load_run
from condsel.selection.curves import choose_models
from condsel.video.decode import DecodedVideo
from condsel.video.sampling import ClipSpec

MemberCall = Callable[[str, DecodedVideo], Awaitable[np.ndarray]]


class RunPool:
    """A run directory's pool and selector, served: backbone, then the selector's choice.

    Parameters
    ----------
    run : Run
        A loaded run directory.
    threshold : float
        The operating threshold used when a request does not give one.
    """

    name = "selector"

    def __init__(self, run: Run, threshold: float):
        self.run = run
        self.threshold = float(threshold)
        self.clips = {name: run.members[name].clip for name in run.order}

    @classmethod
    def from_dir(cls, root: str | Path, threshold: float | None = None) -> RunPool:
        run = load_run(root)
        return cls(run, run.threshold if threshold is None else threshold)

    @property
    def members(self) -> list[str]:
        return list(self.run.order)

    def decode(self, path: str | Path) -> DecodedVideo:
        """Decode, once, the frames that every member may need."""
        return decode_for(self.run, path)

    def _chosen(self, backbone_logits: np.ndarray, threshold: float) -> int:
        selector = self.run.selector
        proba = selector.predict_proba(selector.features(np.asarray(backbone_logits)[None]))
        return int(choose_models(proba, threshold)[0])

    def next_members(self, outputs: Mapping[str, np.ndarray], threshold: float) -> list[str]:
        """``[backbone]`` at the start, then the selector's choice unless it is the backbone, then ``[]``."""
        backbone = self.run.backbone
        if backbone not in outputs:
            return [backbone]
        chosen = self.run.order[self._chosen(outputs[backbone], threshold)]
        return [] if chosen in outputs else [chosen]

    def answer(self, video: str, outputs: Mapping[str, np.ndarray], threshold: float, seconds: float) -> dict:
        """The ``condsel predict --json`` object for a video whose members have all run."""
        k = self._chosen(outputs[self.run.backbone], threshold)
        name = self.run.order[k]
        return _prediction(self.run, video, outputs[name], name, self.run.selection_costs[k], seconds).to_dict()

    def describe(self) -> dict:
        """The pool for ``GET /v1/models``: members in pool order with their GFLOPs per video."""
        run = self.run
        return {
            "policy": self.name,
            "threshold": self.threshold,
            "backbone": run.backbone,
            "pool": [{"name": m, "gflops": run.gflops[m], "gflops_when_chosen": float(c)} for m, c in zip(run.order, run.selection_costs)],
            "policy_gflops": run.selector_gflops,
            "classes": len(run.class_names),
            "flop_convention": FLOP_CONVENTION,
        }


def run_member_loader(root: str | Path, name: str) -> tuple[ClipSpec, nn.Module]:
    """Clip sampling and network of member ``name`` of a run directory (for a member deployment)."""
    run = load_run(root)
    return run.members[name].clip, run.models[name]


def run_member_loaders(root: str | Path) -> dict[str, Callable[[], tuple[ClipSpec, nn.Module]]]:
    """One picklable loader per member of a run directory, in pool order."""
    return {name: partial(run_member_loader, str(root), name) for name in load_run(root).order}


async def execute(pool, call: MemberCall, video: DecodedVideo, threshold: float) -> dict[str, np.ndarray]:
    """Run the members ``pool.next_members`` asks for until it says stop; members asked together run concurrently.

    The asynchronous mirror of ``condsel.pool.predict``'s loop: ``call(name,
    video)`` returns that member's class logits for the video.
    """
    outputs: dict[str, np.ndarray] = {}
    while names := pool.next_members(outputs, threshold):
        repeated = [n for n in names if n in outputs]
        if repeated:
            raise RuntimeError(f"the policy asked again for members that already ran: {repeated}")
        logits = await asyncio.gather(*(call(n, video) for n in names))
        outputs.update(zip(names, logits))
    return outputs
