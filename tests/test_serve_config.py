"""Serve options, replica specs and the stdlib client's multipart body, without starting Ray (the written config: test_serve.py)."""

from __future__ import annotations

import email.parser
import email.policy

import pytest

yaml = pytest.importorskip("yaml", reason="the Ray Serve config needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("ray.serve", reason="condsel serve needs the serve extra: pip install -e '.[serve]'")

from condsel.serve.client import multipart_body  # noqa: E402
from condsel.serve.config import INGRESS, Replicas, ServeOptions, deployment_options  # noqa: E402

MEMBERS = ["frame2d", "conv3d_s", "conv3d_l"]


@pytest.mark.parametrize(
    "text, expected",
    [("conv3d_l=2", ("conv3d_l", Replicas(2, 2))), ("Ingress=1-4", ("Ingress", Replicas(1, 4))), (" x=3 ", ("x", Replicas(3, 3)))],
)
def test_replicas_parse(text, expected):
    assert Replicas.parse(text) == expected


@pytest.mark.parametrize("text", ["conv3d_l", "conv3d_l=0", "conv3d_l=3-2", "=2", "a=b", "a=1-"])
def test_replicas_parse_rejects(text):
    with pytest.raises(ValueError, match="--replicas"):
        Replicas.parse(text)


def test_deployment_options_fixed_and_autoscaled():
    opts = deployment_options(ServeOptions(max_batch=4, replicas={"conv3d_l": [2, 2], "conv3d_s": [1, 3]}), MEMBERS)
    assert list(opts) == [INGRESS, *MEMBERS]
    assert opts["conv3d_l"]["num_replicas"] == 2 and "autoscaling_config" not in opts["conv3d_l"]
    scaled = opts["conv3d_s"]
    assert scaled["num_replicas"] == "auto"
    assert {k: scaled["autoscaling_config"][k] for k in ("min_replicas", "initial_replicas", "max_replicas")} == {
        "min_replicas": 1, "initial_replicas": 1, "max_replicas": 3}
    assert opts["frame2d"]["num_replicas"] == 1 and opts["frame2d"]["max_ongoing_requests"] == 8  # two batches of 4
    with pytest.raises(ValueError, match="not deployments"):
        deployment_options(ServeOptions(replicas={"conv3d_x": [1, 1]}), MEMBERS)
    with pytest.raises(ValueError, match="Ingress"):
        deployment_options(ServeOptions(), ["Ingress"])


@pytest.mark.parametrize("field, value", [("max_batch", 0), ("batch_wait_ms", -1), ("max_upload_mb", 0), ("threshold", 1.5)])
def test_serve_options_reject(field, value):
    with pytest.raises(ValueError):
        ServeOptions(**{field: value})


def test_multipart_body_parses_back():
    body, content_type = multipart_body("clip 1.mp4", b"\x00\x01video-bytes\r\n--", {"threshold": "0.25"})
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
    assert parts["threshold"].get_content() == "0.25"
    assert parts["video"].get_filename() == "clip 1.mp4"
    assert parts["video"].get_payload(decode=True) == b"\x00\x01video-bytes\r\n--"
