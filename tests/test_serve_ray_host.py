"""Where ``condsel serve``'s Ray listens, decided before Ray is imported (no Ray needed here).

The end-to-end check, every listening socket of a running service on loopback,
is in test_serve.py.
"""

from __future__ import annotations

import os

import pytest

from condsel.cli import main
from condsel.errors import CondselError
from condsel.serve.ray_host import LOOPBACK_ENV, prepare_ray


@pytest.fixture
def env(monkeypatch):
    monkeypatch.delenv(LOOPBACK_ENV, raising=False)  # restored after the test
    return os.environ


@pytest.mark.parametrize("host", [None, "127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_a_local_ray_stays_on_loopback(env, host):
    assert prepare_ray(None, host) == {}
    assert env[LOOPBACK_ENV] == "0"


def test_another_ray_host_becomes_the_node_address(env):
    assert prepare_ray(None, "192.0.2.7") == {"_node_ip_address": "192.0.2.7"}
    assert LOOPBACK_ENV not in env


@pytest.mark.parametrize("address, loopback", [("127.0.0.1:6379", True), ("localhost:6379", True),
                                               ("10.1.2.3:6379", False), ("auto", False), ("ray://head:10001", False)])
def test_attaching_looks_on_loopback_only_for_a_loopback_address(env, address, loopback):
    assert prepare_ray(address, None) == {}
    assert (env.get(LOOPBACK_ENV) == "0") == loopback


def test_bad_ray_host_is_an_error(env):
    with pytest.raises(CondselError, match="--ray-host: 'head-node' is not an IP address"):
        prepare_ray(None, "head-node")


def test_ray_host_with_address_exits_2_before_any_work(env, tmp_path, capsys):
    code = main(["serve", "--run", str(tmp_path / "absent"), "--address", "10.1.2.3:6379", "--ray-host", "127.0.0.1"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("condsel serve: error: --ray-host sets where a local Ray listens") and "10.1.2.3:6379" in err
    assert LOOPBACK_ENV not in env
