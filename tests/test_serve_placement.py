"""Where served members run: ``--colocate``, ``--gpus``, ``--device``/``--precision`` as deployment options, without Ray.

Also: the serve tests' collection without the serve extra (ray, yaml, multipart
hidden), where every serve test must skip saying why and none may error.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from condsel.serve.config import INGRESS, ServeOptions, deployment_options, parse_gpus

MEMBERS = ["frame2d", "conv3d_s", "conv3d_l"]
TESTS = Path(__file__).resolve().parent


def test_colocated_service_is_one_deployment_with_the_gpus_given():
    opts = deployment_options(ServeOptions(colocate=True, device="cuda", gpus=parse_gpus(["0.5"], colocate=True)), MEMBERS)
    assert list(opts) == [INGRESS] and opts[INGRESS]["ray_actor_options"]["num_gpus"] == 0.5
    default = deployment_options(ServeOptions(colocate=True, device="cuda"), MEMBERS)
    assert default[INGRESS]["ray_actor_options"]["num_gpus"] == 1.0  # the whole pool on one GPU


def test_per_member_gpus_and_the_default_share_on_cuda():
    opts = deployment_options(ServeOptions(device="cuda:0", gpus=parse_gpus(["conv3d_l=1", "frame2d=0.25"], colocate=False)), MEMBERS)
    gpus = {name: o["ray_actor_options"].get("num_gpus", 0.0) for name, o in opts.items()}
    assert gpus == {INGRESS: 0.0, "frame2d": 0.25, "conv3d_s": pytest.approx(1 / 3), "conv3d_l": 1.0}


def test_on_cpu_nothing_reserves_a_gpu_and_defaults_are_todays():
    opts = deployment_options(ServeOptions(), MEMBERS)
    assert list(opts) == [INGRESS, *MEMBERS]
    assert all(o["ray_actor_options"] == {"num_cpus": 0.0} for o in opts.values())
    options = ServeOptions()
    assert (options.device, options.precision, options.colocate, options.gpus) == ("cpu", "fp32", False, {})


@pytest.mark.parametrize("values, colocate, says", [
    (["conv3d_l=1"], True, "with --colocate every member shares one deployment; give --gpus F"),
    (["1"], False, "a bare F is for --colocate"),
    (["conv3d_l=half"], False, "expected NAME=F"),
])
def test_gpus_spelling_errors_name_the_flag(values, colocate, says):
    with pytest.raises(ValueError, match="^--gpus") as e:
        parse_gpus(values, colocate)
    assert says in str(e.value)


@pytest.mark.parametrize("options, says", [
    (dict(gpus={"conv3d_l": 0.0}, device="cuda"), "--gpus"),
    (dict(gpus={"conv3d_l": float("inf")}, device="cuda"), "--gpus"),
    (dict(gpus={"conv3d_l": 1.0}), "--gpus reserves GPUs for replicas that run on --device cpu"),
])
def test_serve_options_refuse_gpus_that_cannot_work(options, says):
    with pytest.raises(ValueError, match=says):
        ServeOptions(**options)


def test_unknown_deployment_names_in_gpus_or_replicas_are_errors():
    with pytest.raises(ValueError, match=r"--gpus names \['x3d'\]"):
        deployment_options(ServeOptions(device="cuda", gpus={"x3d": 1.0}), MEMBERS)
    with pytest.raises(ValueError, match=r"--replicas names \['conv3d_l'\] that are not deployments; known: \['Ingress'\]"):
        deployment_options(ServeOptions(colocate=True, replicas={"conv3d_l": [2, 2]}), MEMBERS)


HIDE_SERVE_EXTRA = """
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("ray", "yaml", "multipart", "python_multipart"):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden: no serve extra)", name=name)
sys.meta_path.insert(0, Hide())
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_serve_tests_skip_without_the_serve_extra_and_none_errors_at_collection():
    files = sorted(str(p) for p in TESTS.glob("test_serve*.py") if p.name != Path(__file__).name)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent / "src"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", HIDE_SERVE_EXTRA, "-q", "-n", "0", "-rs", "-p", "no:cacheprovider", "--co", *files],
                         capture_output=True, text=True, cwd=TESTS.parent, env=env, timeout=300)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report[-3000:]
    assert "ERROR" not in report and not re.search(r"\d+ errors?\b", report), report[-3000:]
    assert re.search(r"SKIPPED \[\d+\] tests/test_serve.py:\d+: condsel serve needs the serve extra", report), report[-3000:]
    assert "test_serve_routing.py::test_the_async_loop_runs_what_route_runs" in report  # it needs no Ray: it runs


class _Batches:
    """Stands in for MemberMetrics: the batch sizes each member ran."""

    def __init__(self):
        self.sizes: dict[str, list[int]] = {}

    def batch(self, member: str, size: int, seconds: float) -> None:
        self.sizes.setdefault(member, []).append(size)


@pytest.mark.slow
def test_colocated_members_batch_apart_and_answer_their_own_videos():
    """Two members in one event loop, 6 concurrent videos each: every answer is its own member's, batched per member."""
    pytest.importorskip("ray.serve", reason="the batched member reports through Ray's metrics (the serve extra)")
    import asyncio

    import numpy as np
    import torch

    from condsel.pool.config import build_pool
    from condsel.pool.device import Placement
    from condsel.pool.inference import run_member
    from condsel.serve.batching import BatchedMember
    from condsel.synthetic import render_clip
    from condsel.video.decode import DecodedVideo
    from condsel.workflows.demo import SYNTHETIC_POOL

    torch.manual_seed(0)
    nets = build_pool(SYNTHETIC_POOL, random_weights=True)
    rng = np.random.default_rng(0)
    frames = [render_clip("grow", rng) for _ in range(6)]
    videos = [DecodedVideo(f"v{i}", f, np.arange(len(f)), len(f), 8.0) for i, f in enumerate(frames)]
    metrics = _Batches()
    names = ["frame2d", "conv3d_s"]

    async def serve_all():
        members = {n: BatchedMember(SYNTHETIC_POOL.member(n), nets[n], "logits", Placement(), 4, 50.0, metrics) for n in names}
        return await asyncio.gather(*(members[n](v) for v in videos for n in names))

    answers = iter(asyncio.run(serve_all()))
    for v in videos:
        for n in names:
            expected = run_member(SYNTHETIC_POOL.member(n), nets[n], [v], "logits").logits[0]
            np.testing.assert_allclose(next(answers), expected, rtol=1e-4, atol=1e-5, err_msg=f"{n} on {v.path}")
    assert sorted(metrics.sizes) == sorted(names) and all(sum(s) == 6 and max(s) <= 4 and len(s) < 6 for s in metrics.sizes.values())
