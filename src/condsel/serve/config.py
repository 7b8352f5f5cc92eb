"""The service's options, as Ray Serve deployment options and as a ``serve deploy`` config file.

One function, ``deployment_options``, decides each deployment's replicas,
queue depth and actor resources; the embedded service (``condsel serve``) and
the written config both use it, so a config deployed to a cluster runs the
same graph as the local command.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from condsel._io import atomic_path

INGRESS = "Ingress"
APP_NAME = "condsel"
IMPORT_PATH = "condsel.serve.app:app_builder"

# Requests one member replica may hold at once: enough to fill two batches, so
# the next batch gathers while one runs.
QUEUE_BATCHES = 2
# Requests the ingress may hold at once; each waits mostly on member replicas.
INGRESS_MAX_ONGOING = 256


@dataclass(frozen=True)
class Replicas:
    """A deployment's replica count: fixed (``low == high``) or autoscaled between ``low`` and ``high``."""

    low: int
    high: int

    @classmethod
    def parse(cls, text: str) -> tuple[str, Replicas]:
        """``NAME=N`` (fixed) or ``NAME=MIN-MAX`` (autoscaled) -> (name, replicas)."""
        m = re.fullmatch(r"([^=\s]+)=(\d+)(?:-(\d+))?", text.strip())
        if m is None:
            raise ValueError(f"--replicas {text!r}: expected NAME=N or NAME=MIN-MAX")
        low = int(m[2])
        high = low if m[3] is None else int(m[3])
        if low < 1 or high < low:
            raise ValueError(f"--replicas {text!r}: need 1 <= MIN <= MAX")
        return m[1], cls(low, high)


@dataclass(frozen=True)
class ServeOptions:
    """How the graph serves, whatever the pool; JSON-able, so it travels in the config's ``args`` (beside ``run``).

    ``threshold`` None means the pool's own operating threshold; ``batch_wait_ms``
    is how long a member waits to fill a batch; ``max_batch`` 1 disables
    batching. ``cpus_per_replica`` is what each replica reserves from Ray's
    scheduler (0: share the machine, fine on one host).
    """

    threshold: float | None = None
    max_batch: int = 16
    batch_wait_ms: float = 10.0
    max_upload_mb: float = 200.0
    torch_threads: int = 1
    cpus_per_replica: float = 0.0
    replicas: dict[str, list[int]] = field(default_factory=dict)  # name -> [low, high]
    # the budget controller (condsel.serve.control): a target in one unit, its window, the latency SLO
    target_gflops: float | None = None
    target_ms: float | None = None
    window: int = 64
    slo_ms: float | None = None
    costs_ms: dict[str, float] | None = None  # profiled ms per video per member (condsel profile), for answers and --target-ms

    @property
    def controlled(self) -> bool:
        return self.target_gflops is not None or self.target_ms is not None or self.slo_ms is not None

    def __post_init__(self):
        if self.max_batch < 1:
            raise ValueError(f"--max-batch must be >= 1, got {self.max_batch}")
        if self.batch_wait_ms < 0:
            raise ValueError(f"--batch-wait-ms must be >= 0, got {self.batch_wait_ms}")
        if self.max_upload_mb <= 0:
            raise ValueError(f"--max-upload-mb must be positive, got {self.max_upload_mb}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"--threshold {self.threshold} is outside [0, 1]")
        if self.target_gflops is not None and self.target_ms is not None:
            raise ValueError("--target-gflops and --target-ms: give one target")
        if self.target_ms is not None and not self.costs_ms:
            raise ValueError("--target-ms needs member costs in ms: --costs FILE.toml with an [ms] table (condsel profile)")
        if self.window < 1:
            raise ValueError(f"--window must be >= 1, got {self.window}")
        if self.slo_ms is not None and not self.slo_ms > 0:
            raise ValueError(f"--slo-ms must be positive, got {self.slo_ms}")

    def to_args(self) -> dict:
        return asdict(self)

    @classmethod
    def from_args(cls, args: dict) -> ServeOptions:
        try:
            return cls(**args)
        except TypeError as e:
            raise ValueError(f"condsel serve application args: {e}") from e


def deployment_options(options: ServeOptions, members: list[str]) -> dict[str, dict]:
    """Ray Serve options per deployment name (the ingress and every member); unknown names in ``replicas`` are errors."""
    unknown = sorted(set(options.replicas) - {INGRESS, *members})
    if unknown:
        raise ValueError(f"--replicas names {unknown} that are not deployments; known: {[INGRESS, *members]}")
    if INGRESS in members:
        raise ValueError(f"a pool member may not be called {INGRESS!r}: that name is the HTTP ingress")
    actor = {"num_cpus": options.cpus_per_replica}
    out = {}
    for name in [INGRESS, *members]:
        queue = INGRESS_MAX_ONGOING if name == INGRESS else QUEUE_BATCHES * options.max_batch
        low, high = options.replicas.get(name, (1, 1))
        scale: dict = {"num_replicas": low}
        if high > low:
            scale = {
                "num_replicas": "auto",
                "autoscaling_config": {"min_replicas": low, "initial_replicas": low, "max_replicas": high, "target_ongoing_requests": max(1, queue // 2)},
            }
        out[name] = {**scale, "max_ongoing_requests": queue, "ray_actor_options": dict(actor)}
    return out


def serve_config(run: str | Path, options: ServeOptions, members: list[str], host: str, port: int) -> dict:
    """A Ray Serve config (the schema ``serve deploy`` and ``serve run CONFIG`` read)."""
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": host, "port": port},
        "applications": [
            {
                "name": APP_NAME,
                "route_prefix": "/",
                "import_path": IMPORT_PATH,
                "args": {"run": str(run), **options.to_args()},
                "deployments": [{"name": name, **opts} for name, opts in deployment_options(options, members).items()],
            }
        ],
    }


def write_config(path: str | Path, run: str | Path, options: ServeOptions, members: list[str], host: str, port: int) -> Path:
    """Write ``serve_config`` as YAML, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(serve_config(run, options, members, host, port), sort_keys=False), encoding="utf-8")
    return path
