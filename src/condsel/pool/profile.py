"""Measured latency of each pool member on this machine, as a costs file in milliseconds.

GFLOPs are not time: depthwise 3D convolutions (X3D) run far below a CPU's
peak, so a member's share of the pool's milliseconds differs from its share
of the GFLOPs. ``profile_pool`` times each member's forward pass per video
(all its test views, normalisation and view aggregation included, as
``extract``/``predict``/``serve`` run it) at several batch sizes, after a
warm-up, and reports the median and the 90th percentile over repeats.
Decoding (once per video for the whole pool, as serving does) and each
member's view sampling are timed apart on real files, because they are paid
per video whatever the policy runs.

The ``[ms]`` table of the written file is the median forward time per video at
the first batch size; ``[profile]`` records what it was measured under.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from condsel._progress import progress_bar

from condsel._io import atomic_path
from condsel.errors import CondselError
from condsel.pool.config import PoolConfig
from condsel.pool.inference import member_scores
from condsel.pool.views import ViewPlan, decode_for_plan, member_views

WARMUP = 2


def spread(samples_ms: Sequence[float]) -> dict[str, float]:
    """Median and 90th percentile (linear interpolation, numpy's default) of timings in ms."""
    a = np.asarray(samples_ms, dtype=np.float64)
    return {"median_ms": float(np.median(a)), "p90_ms": float(np.percentile(a, 90))}


def time_ms(work: Callable[[], object], repeats: int, warmup: int = WARMUP) -> list[float]:
    """Wall milliseconds of ``repeats`` calls of ``work`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        work()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        out.append(1000.0 * (time.perf_counter() - start))
    return out


def resolve_device(name: str) -> torch.device:
    """``cpu`` or ``cuda``; asking for CUDA where there is none is an error naming the flag."""
    if name not in ("cpu", "cuda"):
        raise CondselError(f"--device {name!r}: expected cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise CondselError("--device cuda: CUDA is not available on this machine (torch sees no GPU); use --device cpu")
    return torch.device(name)


def hardware(device: torch.device) -> str:
    """A one-line description of what ran the forward passes."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), platform.processor())
    return f"{model or platform.machine()} ({torch.get_num_threads()} torch threads)"


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def profile_pool(
    pool: PoolConfig,
    models: Mapping[str, nn.Module],
    batches: Sequence[int] = (1,),
    repeats: int = 10,
    videos: Sequence[str | Path] = (),
    device: torch.device = torch.device("cpu"),
    progress: bool = False,
) -> dict:
    """Per-member forward ms per video at each batch size; decoding and view sampling per video on ``videos``.

    Forward inputs are random uint8 views of each member's shape (the time
    does not depend on the pixels); the networks are moved to ``device``.

    Returns
    -------
    dict
        ``forward``: name -> {"batch_B": {"median_ms", "p90_ms"}} (per video);
        ``decode``: {"median_ms", "p90_ms"} per video for the whole pool, or None
        without videos; ``views``: name -> the same, for cutting that member's
        views from the decoded frames; ``ms``: name -> median forward ms per
        video at ``batches[0]``.
    """
    if not batches or any(b < 1 for b in batches):
        raise CondselError(f"--batch {list(batches)}: every batch size must be >= 1")
    if repeats < 1:
        raise CondselError(f"--repeats {repeats}: must be >= 1")
    rng = np.random.default_rng(0)
    forward: dict[str, dict] = {}
    steps = [(m, b) for m in pool.members for b in batches]
    for member, batch in progress_bar(steps, desc="profile", unit="step", disable=not progress, leave=False):
        model = models[member.name].to(device).eval()
        clip = member.clip
        views = torch.from_numpy(rng.integers(0, 256, (batch, clip.views, clip.num_frames, clip.size, clip.size, 3), dtype=np.uint8))

        def run(model=model, member=member, views=views):
            member_scores(member, model, views, "logits")
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        samples = [t / batch for t in time_ms(run, repeats)]
        forward.setdefault(member.name, {})[f"batch_{batch}"] = spread(samples)
    decode, views_ms = None, {}
    if videos:
        plan = ViewPlan({m.name: m.clip for m in pool.members}, decode_size=pool.decode_short_side)
        decoded, decode_samples = [], []
        for path in videos:
            held: list = []
            decode_samples += time_ms(lambda p=path, held=held: held.append(decode_for_plan(p, plan)), repeats, warmup=0)
            decoded.append(held[-1])
        decode = spread(decode_samples)
        for m in pool.members:
            views_ms[m.name] = spread([t for v in decoded for t in time_ms(lambda v=v, m=m: member_views(v, m.clip), repeats, 1)])
    first = f"batch_{batches[0]}"
    return {
        "forward": forward,
        "decode": decode,
        "views": views_ms,
        "ms": {name: stats[first]["median_ms"] for name, stats in forward.items()},
    }


def write_costs_ms(path: str | Path, profile: dict, conditions: Mapping[str, object]) -> Path:
    """Write ``profile`` as a costs file: ``[ms]`` per member, ``[profile]`` the conditions and every statistic.

    TOML by hand (the standard library reads TOML but does not write it);
    ``json.dumps`` spells strings and numbers as TOML does.
    """

    def inline(stats: Mapping[str, float]) -> str:
        return "{ " + ", ".join(f"{k} = {v!r}" for k, v in stats.items()) + " }"

    lines = [
        "# condsel profile: forward milliseconds per video (all test views), median over repeats after warm-up,",
        f"# at batch {conditions['batch']}; decoding and view sampling are timed apart under [profile].",
        "[ms]",
        *(f"{json.dumps(name)} = {value!r}" for name, value in profile["ms"].items()),
        "",
        "[profile]",
        *(f"{key} = {json.dumps(value)}" for key, value in conditions.items()),
    ]
    if profile["decode"] is not None:
        lines.append(f"decode = {inline(profile['decode'])}")
    lines.append("")
    for name, stats in profile["forward"].items():
        lines += [f"[profile.forward.{json.dumps(name)}]", *(f"{b} = {inline(s)}" for b, s in stats.items()), ""]
    if profile["views"]:
        lines += ["[profile.views]", *(f"{json.dumps(n)} = {inline(s)}" for n, s in profile["views"].items()), ""]
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
    return path
