"""``condsel serve`` end to end on loopback: a real Ray Serve service over a run directory made here.

The pool has random weights and a selector policy fitted on their outputs (as
in test_pool_predict.py): the answers mean nothing, but each must be exactly the
one ``condsel predict`` gives on the same file, under concurrent load.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

# Ray reads its auth mode when imported; in token mode (Ray's default for a local cluster) this process can
# attach to the service's Ray with ~/.ray/auth_token, which that local Ray creates when missing.
os.environ.setdefault("RAY_AUTH_MODE", "token")
from condsel.serve.ray_host import LOOPBACK_ENV  # noqa: E402

os.environ.setdefault(LOOPBACK_ENV, "0")  # the service's Ray is on loopback: look for it there when attaching
pytest.importorskip("ray.serve", reason="condsel serve needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("multipart", reason="condsel serve needs python-multipart (the serve extra)")

import ray  # noqa: E402
from conftest import FIXTURES, synthetic_pool_videos  # noqa: E402
import yaml  # noqa: E402
from ray import cloudpickle, serve  # noqa: E402
from ray.serve.schema import ServeDeploySchema  # noqa: E402

from condsel.cli import main  # noqa: E402
from condsel.pool.inference import pool_table  # noqa: E402
from condsel.pool.run_dir import load_run, save_run  # noqa: E402
from condsel.selection.method.policies import SelectorPolicy  # noqa: E402
from condsel.serve.app import build_app, build_graph  # noqa: E402
from condsel.serve.client import get_json, post_video, wait_healthy  # noqa: E402
from condsel.serve.config import INGRESS, ServeOptions  # noqa: E402
from condsel.serve.control import OperatingCurve  # noqa: E402
from condsel.serve.routing import RunPool, run_member_loaders  # noqa: E402
from condsel.synthetic import CLASS_NAMES  # noqa: E402
from condsel.workflows.demo import SYNTHETIC_POOL  # noqa: E402
from condsel.video.encode import write_video  # noqa: E402

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # a real Ray service: ~40 s

REAL_VIDEOS = [FIXTURES / "videos" / "arm_wrestling_cut.mp4", FIXTURES / "videos" / "unlabelled_test_cut.avi"]
REQUESTS, CLIENTS = 30, 6
UPLOAD_LIMIT_MB = 1
MS = {"frame2d": 1.5, "conv3d_s": 4.0, "conv3d_l": 30.0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    """A run directory over 12 synthetic videos, and a threshold at which the selector's choices differ most."""
    root = tmp_path_factory.mktemp("serve")
    models, data, videos = synthetic_pool_videos(root, 12)
    table = pool_table(list(SYNTHETIC_POOL.members), models, videos, [p.name for p in data.paths], data.labels, list(CLASS_NAMES))
    policy = SelectorPolicy(backbone="frame2d", selector_input="probs", hidden=(16,), epochs=3).fit(table)
    run_dir = save_run(root / "run", SYNTHETIC_POOL, policy, list(CLASS_NAMES), 0.5, policy.sweep(table), "logits", models=models)

    def spread(threshold: float) -> tuple[int, int]:  # members ending some video's route, then balance
        last = policy.route(table, threshold).ran.cumsum(axis=1).argmax(axis=1)
        counts = np.bincount(last, minlength=len(policy.members_))
        return int(np.count_nonzero(counts)), -int(counts.max())

    threshold = float(max(np.linspace(0.05, 0.95, 19), key=spread))
    files = list(data.paths) + REAL_VIDEOS
    costs = root / "costs_ms.toml"  # as condsel profile writes them; the values only need to be known here
    costs.write_text("[ms]\n" + "".join(f'"{name}" = {MS[name]!r}\n' for name in SYNTHETIC_POOL.names))
    return {"root": root, "run": run_dir, "threshold": threshold, "files": files, "costs": costs}


@pytest.fixture(scope="module")
def service(material):
    """``condsel serve`` in a subprocess with its own local Ray (2 CPUs, no dashboard, temp dir under /tmp)."""
    port, metrics_port = _free_port(), _free_port()
    ray_tmp = tempfile.mkdtemp(prefix="condsel-ray-", dir="/tmp")  # Ray's socket paths must stay short
    log = material["root"] / "serve.log"
    env = {**os.environ, "RAY_TMPDIR": ray_tmp}
    env.pop("RAY_ADDRESS", None)
    env.pop(LOOPBACK_ENV, None)  # set in this process for attaching; the command must set it for its own Ray
    command = [sys.executable, "-m", "condsel", "serve", "--run", str(material["run"]), "--port", str(port), "--ray-cpus", "2",
               "--threshold", repr(material["threshold"]), "--max-upload-mb", str(UPLOAD_LIMIT_MB), "--max-batch", "4",
               "--metrics-port", str(metrics_port), "--costs", str(material["costs"])]
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, timeout=300, alive=lambda: proc.poll() is None)
    except TimeoutError:
        proc.kill()
        pytest.fail(f"condsel serve did not become healthy:\n{log.read_text()[-3000:]}")
    deadline = time.monotonic() + 30  # the address line follows readiness by a moment
    while "Ray at " not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    address = log.read_text().split("Ray at ")[1].split(";")[0]
    yield {"proc": proc, "base": base, "log": log, "address": address, "metrics": f"http://127.0.0.1:{metrics_port}/metrics"}
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_write_config_is_a_ray_serve_config(tmp_path, material):
    out = tmp_path / "serve.yaml"
    code = main(["serve", "--run", str(material["run"]), "--write-config", str(out), "--port", "8123", "--max-batch", "4",
                 "--replicas", "conv3d_l=2", "conv3d_s=1-3", "--threshold", "0.3"])
    assert code == 0
    doc = yaml.safe_load(out.read_text())
    ServeDeploySchema.model_validate(doc)  # the schema `serve deploy` checks
    (app,) = doc["applications"]
    assert app["import_path"] == "condsel.serve.app:app_builder"
    assert app["args"]["run"] == str(material["run"].resolve()) and app["args"]["threshold"] == 0.3 and app["args"]["max_batch"] == 4
    deployments = {d["name"]: d for d in app["deployments"]}
    assert set(deployments) == {INGRESS, *load_run(material["run"]).order}
    assert deployments["conv3d_l"]["num_replicas"] == 2
    assert deployments["conv3d_s"]["autoscaling_config"]["max_replicas"] == 3
    assert all("ray_actor_options" in d for d in deployments.values())
    assert doc["http_options"] == {"host": "127.0.0.1", "port": 8123}


def test_write_config_rejects_unknown_replica_names(tmp_path, material, capsys):
    assert main(["serve", "--run", str(material["run"]), "--write-config", str(tmp_path / "s.yaml"), "--replicas", "nope=2"]) == 2
    assert "nope" in capsys.readouterr().err


def _predict_cli(capsys, material, files) -> dict[str, dict]:
    """``condsel predict --json`` on ``files`` at the service's threshold, by file name."""
    assert main(["predict", "--run", str(material["run"]), "--threshold", repr(material["threshold"]), "--json", *map(str, files)]) == 0
    return {Path(r["video"]).name: r for r in json.loads(capsys.readouterr().out)}


@pytest.mark.slow
def test_concurrent_answers_equal_condsel_predict(material, service, capsys):
    files = [material["files"][i % len(material["files"])] for i in range(REQUESTS)]
    url = f"{service['base']}/v1/predict"
    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(lambda f: post_video(url, f), files))
    expected = _predict_cli(capsys, material, material["files"])
    run = load_run(material["run"])
    for path, (status, answer) in zip(files, answers):
        assert status == 200, answer
        assert set(answer) == {"video", "label", "score", "model", "members", "gflops", "seconds", "random_weights",
                               "threshold", "cost"}
        assert answer["threshold"] == material["threshold"]
        assert answer["cost"] == {"gflops": answer["gflops"], "ms": pytest.approx(sum(MS[m] for m in answer["members"]))}
        want = expected[path.name]
        assert answer["video"] == path.name
        assert (answer["model"], answer["label"], answer["members"]) == (want["model"], want["label"], want["members"])
        assert answer["score"] == pytest.approx(want["score"], abs=1e-5)
        assert answer["gflops"] == pytest.approx(sum(run.gflops[m] for m in answer["members"]) + run.policy.overhead_gflops_)
        assert answer["seconds"] > 0
    assert len({a["model"] for _, a in answers}) >= 2, "the threshold should route videos to different members"


@pytest.mark.slow
def test_per_request_threshold_overrides_the_default(material, service):
    run = load_run(material["run"])
    path = material["files"][0]
    for threshold, model in ((0.0, run.backbone), (1.0, run.order[-1])):
        status, answer = post_video(f"{service['base']}/v1/predict", path, threshold=threshold)
        assert status == 200 and answer["model"] == model, answer


@pytest.mark.slow
def test_models_endpoint_lists_the_pool(material, service):
    status, doc = get_json(f"{service['base']}/v1/models")
    run = load_run(material["run"])
    assert status == 200
    assert [m["name"] for m in doc["pool"]] == run.order
    assert [m["gflops"] for m in doc["pool"]] == pytest.approx([run.gflops[m] for m in run.order])
    assert doc["threshold"] == pytest.approx(material["threshold"]) and doc["backbone"] == run.backbone


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback  # ::ffff:127.0.0.1 too


@pytest.mark.slow
def test_every_listening_socket_of_the_service_is_loopback(service):
    """The command, its local Ray (GCS, raylet, agents, workers) and Serve's proxy listen on loopback only."""
    root = psutil.Process(service["proc"].pid)
    listening: dict[str, set[str]] = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            for conn in process.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    listening.setdefault(conn.laddr.ip, set()).add(f"{process.name()}:{conn.laddr.port}")
        except psutil.NoSuchProcess:
            continue
    ports = {int(entry.rsplit(":", 1)[1]) for entries in listening.values() for entry in entries}
    expected = {int(service["base"].rsplit(":", 1)[1]), int(service["metrics"].split(":")[2].split("/")[0]),
                int(service["address"].rsplit(":", 1)[1])}  # HTTP, metrics export, GCS: the listing saw them all
    assert expected <= ports, (expected, listening)
    assert _is_loopback(service["address"].rsplit(":", 1)[0]), service["address"]
    exposed = {ip: sorted(entries) for ip, entries in listening.items() if not _is_loopback(ip)}
    assert not exposed, f"listening beyond loopback: {exposed}"


@pytest.mark.slow
def test_bad_uploads_get_4xx_and_the_service_stays_up(material, service):
    url = f"{service['base']}/v1/predict"
    good = material["files"][0]
    cases = [
        ("notes.mp4", b"not a video\n" * 50, None, 422, "notes.mp4: not a readable video"),
        ("truncated.mp4", good.read_bytes()[:300], None, 422, "truncated.mp4:"),
        ("empty.mp4", b"", None, 400, "empty upload"),
        ("huge.mp4", b"\0" * (UPLOAD_LIMIT_MB * 2**20 + 1), None, 413, "over the limit"),
        (good.name, good.read_bytes(), 1.5, 422, "threshold"),
    ]
    for name, data, threshold, code, message in cases:
        status, answer = post_video(url, good, threshold=threshold, filename=name, data=data)
        assert status == code and message in answer["error"], (name, status, answer)
        assert "/tmp/" not in answer["error"]  # the server's temporary paths stay private
    body, content_type = b"--x\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\n1\r\n--x--\r\n", "multipart/form-data; boundary=x"
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(urllib.request.Request(url, data=body, headers={"Content-Type": content_type}), timeout=30)
    assert missing.value.code == 400
    assert get_json(f"{service['base']}/healthz")[0] == 200
    assert post_video(url, good)[0] == 200


@pytest.mark.slow
def test_metrics_reach_the_prometheus_endpoint(service):
    """After the requests above: requests by chosen model and batch sizes per member, on Ray's Prometheus endpoint."""
    def total(text: str, metric: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(metric + "{"))

    deadline, text = time.monotonic() + 60, ""
    wanted = ("ray_condsel_requests_total{", "ray_condsel_batch_size_count{", "ray_condsel_request_seconds_bucket{", 'status="413"',
              "ray_condsel_stage_exits_total{", "ray_condsel_video_cost_bucket{", "ray_condsel_threshold{")
    while time.monotonic() < deadline:  # Ray's agent exports every few seconds, each replica's counts as they reach it
        with urllib.request.urlopen(service["metrics"], timeout=10) as response:
            text = response.read().decode()
        served = total(text, "ray_condsel_requests_total")
        if all(w in text for w in wanted) and served >= REQUESTS and total(text, "ray_condsel_stage_exits_total") == served:
            break
        time.sleep(2)
    served = [line for line in text.splitlines() if line.startswith("ray_condsel_requests_total{")]
    assert served and all('model="' in line for line in served)
    batches = [line for line in text.splitlines() if line.startswith("ray_condsel_batch_size_count{")]
    assert batches and {line.split('deployment="')[1].split('"')[0] for line in batches} <= set(SYNTHETIC_POOL.names)
    assert total(text, "ray_condsel_requests_total") >= REQUESTS
    assert "ray_condsel_request_seconds_bucket{" in text and 'status="413"' in text
    assert total(text, "ray_condsel_stage_exits_total") == total(text, "ray_condsel_requests_total")
    assert 'unit="gflops"' in text and 'unit="ms"' in text


class Exploding(torch.nn.Module):
    """A member network that raises on all-black clips (normalised pixels at their minimum) and otherwise is ``inner``."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() and bool((x.flatten(1).amax(dim=1) < -1.9).any()):
            raise RuntimeError("injected member failure on a black clip")
        return self.inner(x)


def exploding_member(run_dir: str, name: str):
    run = load_run(run_dir)
    return run.members[name], Exploding(run.models[name]), run.aggregate


@pytest.mark.slow
def test_a_failing_member_fails_only_its_request(material, service):
    """A second application on the same Ray, whose costliest member raises on black videos: 500 for those only."""
    black = material["root"] / "black.mp4"
    write_video(black, np.zeros((16, 48, 64, 3), np.uint8), fps=8)
    run = str(material["run"])
    loaders = run_member_loaders(run)
    costliest = load_run(run).order[-1]
    loaders[costliest] = partial(exploding_member, run, costliest)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address=service["address"], log_to_driver=False)
    try:
        options = ServeOptions(max_batch=8, batch_wait_ms=50)
        serve.run(build_graph(partial(RunPool.from_dir, run, 1.0), loaders, options), name="faulty", route_prefix="/faulty")
        url = f"{service['base']}/faulty/v1/predict"
        files = [black, *material["files"][:5]]
        with ThreadPoolExecutor(len(files)) as pool:  # concurrent, so the black video shares a batch with good ones
            answers = list(pool.map(lambda f: post_video(url, f), files))
        assert answers[0][0] == 500 and "injected member failure" in answers[0][1]["error"]
        assert [s for s, _ in answers[1:]] == [200] * 5 and {a["model"] for _, a in answers[1:]} == {costliest}
        assert post_video(url, black, threshold=0.0)[0] == 200  # the backbone alone is fine with it
        serve.delete("faulty")
    finally:
        ray.shutdown()
    assert get_json(f"{service['base']}/healthz")[0] == 200


@pytest.mark.slow
def test_a_budget_controlled_application_answers_at_the_controllers_threshold(material, service):
    """``--target-gflops`` on the same Ray: answers carry the controller's threshold and both costs; the state is listed."""
    run = str(material["run"])
    curve = OperatingCurve.from_points(load_run(run, []).calibration)
    target = float(np.sqrt(curve.cheapest * curve.costliest))
    ray.init(address=service["address"], log_to_driver=False)
    try:
        options = ServeOptions(target_gflops=target, window=4, costs_ms=MS)
        serve.run(build_graph(partial(RunPool.from_dir, run, None, MS), run_member_loaders(run), options),
                  name="budget", route_prefix="/budget")
        url = f"{service['base']}/budget/v1/predict"
        answers = [post_video(url, material["files"][i % len(material["files"])]) for i in range(12)]
        assert all(status == 200 for status, _ in answers)
        first = answers[0][1]
        assert first["threshold"] == pytest.approx(curve.threshold_for(target))  # the setpoint starts at the target
        assert all(curve.thresholds[0] <= a["threshold"] <= curve.thresholds[-1] for _, a in answers)
        assert all(a["cost"]["ms"] == pytest.approx(sum(MS[m] for m in a["members"])) for _, a in answers)
        assert post_video(url, material["files"][0], threshold=1.0)[1]["threshold"] == 1.0  # a request's own threshold wins
        status, doc = get_json(f"{service['base']}/budget/v1/models")
        assert status == 200 and doc["controller"]["target_gflops"] == pytest.approx(target) and doc["controller"]["window"] == 4
        serve.delete("budget")
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_a_colocated_application_is_one_deployment_answering_as_predict(material, service, capsys):
    """``--colocate`` on the same Ray: one deployment; answers equal predict's (fp32), then say bf16 where asked."""
    run = str(material["run"])
    expected = _predict_cli(capsys, material, material["files"])
    ray.init(address=service["address"], log_to_driver=False)
    try:
        for name, precision in (("colo", "fp32"), ("colo16", "bf16")):
            options = ServeOptions(threshold=material["threshold"], max_batch=4, batch_wait_ms=20, colocate=True, precision=precision)
            serve.run(build_app(run, options), name=name, route_prefix=f"/{name}")
            assert list(serve.status().applications[name].deployments) == [INGRESS]  # no member deployments
            url = f"{service['base']}/{name}/v1/predict"
            files = [material["files"][i % len(material["files"])] for i in range(12)]
            with ThreadPoolExecutor(CLIENTS) as pool:  # concurrent: members batch inside the one process
                answers = list(pool.map(lambda f: post_video(url, f), files))
            for path, (status, answer) in zip(files, answers):
                assert status == 200, answer
                want = expected[path.name]
                if precision == "fp32":
                    assert "precision" not in answer
                    assert (answer["model"], answer["label"], answer["members"]) == (want["model"], want["label"], want["members"])
                    assert answer["score"] == pytest.approx(want["score"], abs=1e-5)
                else:
                    assert answer["precision"] == "bf16" and answer["members"][0] == want["members"][0]
            status, doc = get_json(f"{service['base']}/{name}/v1/models")
            assert status == 200 and doc["serving"]["colocate"] is True and doc["precision"] == precision
            serve.delete(name)
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_sigterm_stops_serve_and_ray_within_30s(service):
    proc = service["proc"]
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert time.monotonic() - start < 30
    assert "stopping" in service["log"].read_text()
