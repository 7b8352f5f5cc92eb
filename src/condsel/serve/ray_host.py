"""Where the Ray under ``condsel serve`` listens: loopback unless the user asks otherwise.

Ray's control ports (GCS, raylet, workers, agents) have a history of
remote-code-execution exposure when reachable, and a local service needs none
of them beyond this machine. Ray 2.x, though, turns a loopback node address
into the machine's network address (``ray.init(_node_ip_address="127.0.0.1")``
starts a node at, say, 192.0.2.2) and then listens on every interface. What
makes it keep 127.0.0.1 is ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read when
``ray`` is imported: the node address is then the loopback one, and every Ray
process, the metrics export port included, binds to it. A driver that attaches
to that Ray needs the same setting, or it looks for the GCS at the network
address. No Ray import at module level: this must run before it.

Ray Serve 2.60 adds one listener of its own that ignores the node address:
each replica's inter-deployment gRPC server, hard-coded to ``[::]:0`` (all
interfaces). :func:`keep_replica_grpc_on_loopback`, called by each deployment's
constructor (Serve starts that server right after it), moves it to 127.0.0.1
when the Ray is a loopback one (the setting above is inherited by every Ray
process).
"""

from __future__ import annotations

import ipaddress
import os

from condsel.errors import CondselError

LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
DEFAULT_RAY_HOST = "127.0.0.1"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address_host(address: str) -> str:
    """The host of a Ray address ``HOST:PORT`` (``auto`` and ``ray://...`` give themselves)."""
    return address.rpartition(":")[0].strip("[]") if ":" in address and "://" not in address else address


def prepare_ray(address: str | None, host: str | None) -> dict:
    """Set up the environment for Ray (call before ``ray`` is imported); the ``ray.init`` arguments of a local Ray.

    ``address``: the cluster to attach to, if any; ``host``: ``--ray-host``, a
    local Ray's node address (default loopback, which keeps every Ray port on
    this machine). Any other address is given to Ray as its node address, and
    Ray then listens on all interfaces (its own behaviour).
    """
    if address:
        if host is not None:
            raise CondselError(f"--ray-host sets where a local Ray listens; with --address or RAY_ADDRESS ({address}) "
                               "the cluster's own settings apply")
        host = address_host(address)  # a driver attaching to a loopback Ray must look for it on loopback
    host = DEFAULT_RAY_HOST if host is None else host
    if is_loopback(host):
        os.environ[LOOPBACK_ENV] = "0"
        return {}
    if address:
        return {}
    try:
        ipaddress.ip_address(host)
    except ValueError as e:
        raise CondselError(f"--ray-host: {host!r} is not an IP address") from e
    return {"_node_ip_address": host}


def check_bound(host: str, gcs_address: str) -> None:
    """Refuse a local Ray that did not come up on the loopback address asked for (``ray`` imported too early)."""
    if is_loopback(host) and not is_loopback(address_host(gcs_address)):
        raise CondselError(
            f"--ray-host {host}: Ray started at {gcs_address}, not on loopback; ray was imported before "
            f"condsel serve could set {LOOPBACK_ENV}=0 (set it in the environment)"
        )


def keep_replica_grpc_on_loopback() -> None:
    """In a replica process of a loopback Ray: bind Serve's inter-deployment gRPC server to 127.0.0.1, not ``[::]``.

    Replicas reach each other at the node address, 127.0.0.1 here, so nothing
    else changes; on any other Ray this does nothing.
    """
    if os.environ.get(LOOPBACK_ENV) != "0":
        return
    from ray.serve._private import replica

    bind = replica.add_port_to_grpc_server
    if getattr(bind, "loopback_only", False):
        return

    def on_loopback(server, address: str) -> int:
        return bind(server, "127.0.0.1:0" if address == "[::]:0" else address)

    on_loopback.loopback_only = True
    replica.add_port_to_grpc_server = on_loopback
