"""Conditional inference on video files with a run directory's policy: decode once, run what the policy asks.

:func:`execute` drives any policy (``condsel.selection.method.policies``) over one
video: it asks the policy which members to run next, runs them, and repeats
until the policy stops; ``serve`` mirrors it. Each member's scores come from
:func:`condsel.pool.inference.member_scores` on views cut by
:mod:`condsel.pool.views`, as in ``extract``, so a video's online scores
equal its stored ones.

Three ways to run the same decisions, which the latency report compares:
- ``predict_video``: one video at a time, every network resident in memory;
- ``predict_video(..., load_chosen=True)``: members after the backbone are
  read from their checkpoints at each use (a pool too large to keep resident);
- ``predict_batched``: a batch of videos, each member run once per step over
  the videos that asked for it.
``seconds`` always includes decoding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from condsel.pool.inference import member_scores
from condsel.pool.run_dir import Run
from condsel.pool.views import decode_for_plan, member_views
from condsel.selection.method.fusion import probabilities
from condsel.selection.method.policies import Policy
from condsel.video.decode import DecodedVideo

RunMembers = Callable[[list[str]], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class Prediction:
    video: str
    label: str
    score: float  # the final score of ``label`` (a probability)
    model: str  # the last member run: the chosen model of a selector, the stage a cascade stopped at
    members: list[str]  # every member run, in order
    gflops: float  # every member run + the policy's own cost, per video
    seconds: float
    random_weights: bool
    ms: float | None = None  # profiled ms of the members run, in a run fitted on ms costs
    precision: str = "fp32"  # the forward passes' autocast precision (--precision)

    def to_dict(self) -> dict:
        """The JSON answer; ``ms`` only where known, ``precision`` only where reduced (bf16, fp16)."""
        out = asdict(self)
        if self.ms is None:
            del out["ms"]
        if self.precision == "fp32":
            del out["precision"]
        return out


def execute(policy: Policy, run_member: RunMembers, threshold: float, video: str | None = None) -> tuple[np.ndarray, list[str], float]:
    """Run ``policy`` on one video; ``run_member(names)`` returns those members' (C,) scores.

    Parameters
    ----------
    policy : Policy
        A fitted policy.
    run_member : callable
        Runs the members it is given on this video and returns name -> (C,) scores.
    threshold : float
        The operating point.
    video : str, optional
        The video's path or name, for a policy that mixes choices per video.

    Returns
    -------
    scores : ndarray
        (C,) final class scores.
    members : list of str
        The members run, in order.
    gflops : float
        Their GFLOPs plus the policy's overhead.
    """
    outputs: dict[str, np.ndarray] = {}
    while names := policy.next_members(outputs, threshold, video):
        again = sorted(set(names) & set(outputs))
        if again:
            raise RuntimeError(f"the {policy.name} policy asked to run {again} again")
        outputs.update({n: np.asarray(v) for n, v in run_member(list(names)).items()})
    ran = list(outputs)
    return policy.final_scores(outputs), ran, policy.video_gflops(ran)


def decode_for(run: Run, path: str | Path, names: Sequence[str] | None = None) -> DecodedVideo:
    """Decode, once, the frames that members ``names`` (default: all the policy may run) test on."""
    return decode_for_plan(path, run.plan(None if names is None else list(names)))


def video_runner(run: Run, video: DecodedVideo, load: bool = False) -> RunMembers:
    """The ``run_member`` of :func:`execute` for one decoded video: members' (C,) scores as ``extract`` stores them.

    With ``load``, members after the backbone are read from their checkpoints at each call.
    """

    def run_members(names: list[str]) -> dict[str, np.ndarray]:
        out = {}
        for name in names:
            member = run.members[name]
            model = run.load_model(name) if load and name != run.backbone else run.models[name]
            out[name] = member_scores(member, model, member_views(video, member.clip), run.aggregate, placement=run.placement).logits[0]
        return out

    return run_members


def make_prediction(run: Run, path, scores: np.ndarray, members: list[str], seconds: float) -> Prediction:
    """The answer ``predict --json`` and ``serve`` give for one video: its top class, the members run, their cost."""
    c = int(np.argmax(scores))
    costs = run.video_costs(members)
    return Prediction(str(path), run.class_names[c], float(scores[c]), members[-1], members, float(costs["gflops"]), seconds,
                      run.random_weights, costs.get("ms"), run.placement.precision)


def warm_up(run: Run) -> None:
    """Run every network once on zeros, so the first video's ``seconds`` do not include one-off kernel setup."""
    placement = run.placement
    with torch.inference_mode(), placement.autocast():
        for name in run.order:
            clip = run.members[name].clip
            run.models[name](torch.zeros(clip.views, 3, clip.num_frames, clip.size, clip.size, device=placement.device))


def predict_video(run: Run, path: str | Path, threshold: float, load_chosen: bool = False) -> Prediction:
    """Run the policy on one video. Raises ``VideoDecodeError`` for a bad file."""
    start = time.perf_counter()
    video = decode_for(run, path)
    scores, ran, _ = execute(run.policy, video_runner(run, video, load_chosen), threshold, str(path))
    return make_prediction(run, path, scores, ran, time.perf_counter() - start)


def predict_with(run: Run, path: str | Path, name: str) -> Prediction:
    """Run member ``name`` alone on one video (the single-model baseline), decoding only its frames."""
    start = time.perf_counter()
    video = decode_for(run, path, [name])
    logits = video_runner(run, video)([name])[name]
    prediction = make_prediction(run, path, probabilities(logits, run.policy.multilabel_), [name], time.perf_counter() - start)
    return replace(prediction, gflops=run.gflops[name])  # the member alone: no policy overhead


def predict_batched(run: Run, paths: Sequence[str | Path], threshold: float) -> list[Prediction]:
    """The policy on a batch: at each step every member runs once over the videos that asked for it.

    ``seconds`` is the batch time per video.
    """
    start = time.perf_counter()
    videos = [decode_for(run, p) for p in paths]
    outputs: list[dict[str, np.ndarray]] = [{} for _ in paths]
    active = list(range(len(paths)))
    while active:
        asked = {i: run.policy.next_members(outputs[i], threshold, str(paths[i])) for i in active}
        active = [i for i in active if asked[i]]
        for name in dict.fromkeys(n for i in active for n in asked[i]):
            routed = [i for i in active if name in asked[i]]
            member = run.members[name]
            views = np.concatenate([member_views(videos[i], member.clip) for i in routed])
            scores = member_scores(member, run.models[name], views, run.aggregate, placement=run.placement).logits
            for i, s in zip(routed, scores):
                outputs[i][name] = s
    per_video = (time.perf_counter() - start) / max(len(paths), 1)
    results = []
    for p, out in zip(paths, outputs):
        ran = list(out)
        results.append(make_prediction(run, p, run.policy.final_scores(out), ran, per_video))
    return results
