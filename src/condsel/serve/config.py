"""The service's options, as Ray Serve deployment options and as a ``serve deploy`` config file.

One function, ``deployment_options``, decides each deployment's replicas,
queue depth and actor resources; the embedded service (``condsel serve``) and
the written config both use it, so a config deployed to a cluster runs the
same graph as the local command.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

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
    # where the members run (condsel.pool.device): checked where they are loaded, since a GPU is only visible there
    device: str = "cpu"
    precision: str = "fp32"
    colocate: bool = False  # every member in the ingress's process (condsel.serve.colocated)
    gpus: dict[str, float] = field(default_factory=dict)  # deployment name -> Ray num_gpus per replica

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
        bad = {name: f for name, f in self.gpus.items() if not 0 < f < math.inf}
        if bad:
            raise ValueError(f"--gpus {bad}: GPUs per replica must be > 0 (fractions share a GPU)")
        if self.gpus and not self.device.startswith("cuda"):
            raise ValueError(f"--gpus reserves GPUs for replicas that run on --device {self.device}: give --device cuda")

    def to_args(self) -> dict:
        return asdict(self)

    @classmethod
    def from_args(cls, args: dict) -> ServeOptions:
        try:
            return cls(**args)
        except TypeError as e:
            raise ValueError(f"condsel serve application args: {e}") from e


def parse_gpus(values: list[str], colocate: bool) -> dict[str, float]:
    """``--gpus``: ``F`` for the colocated service (its one deployment, the ingress), ``NAME=F`` per member deployment."""
    out = {}
    for text in values:
        name, _, number = text.rpartition("=")
        try:
            share = float(number)
        except ValueError:
            raise ValueError(f"--gpus {text!r}: expected NAME=F (per member) or F (with --colocate), F a number of GPUs") from None
        if colocate and name:
            raise ValueError(f"--gpus {text!r}: with --colocate every member shares one deployment; give --gpus F")
        if not colocate and not name:
            raise ValueError(f"--gpus {text!r}: a bare F is for --colocate; per-member deployments take --gpus NAME=F")
        out[name or INGRESS] = share
    return out


def deployment_options(options: ServeOptions, members: list[str]) -> dict[str, dict]:
    """Ray Serve options per deployment name (the ingress and every member; only the ingress when colocated).

    Unknown names in ``replicas`` or ``gpus`` are errors. On ``--device cuda``
    a deployment that runs members and has no ``gpus`` entry gets a GPU share
    (Ray hides the GPUs from a replica that reserved none): 1 for the colocated
    ingress, 1 / members for each member deployment, so a pool shares one GPU.
    """
    if INGRESS in members:
        raise ValueError(f"a pool member may not be called {INGRESS!r}: that name is the HTTP ingress")
    deployments = [INGRESS] if options.colocate else [INGRESS, *members]
    for flag, named in (("--replicas", options.replicas), ("--gpus", options.gpus)):
        unknown = sorted(set(named) - set(deployments))
        if unknown:
            raise ValueError(f"{flag} names {unknown} that are not deployments; known: {deployments}")
    running = deployments if options.colocate else members  # the deployments that hold networks
    default_gpus = (1.0 if options.colocate else 1.0 / max(len(members), 1)) if options.device.startswith("cuda") else 0.0
    out = {}
    for name in deployments:
        actor = {"num_cpus": options.cpus_per_replica}
        gpus = options.gpus.get(name, default_gpus if name in running else 0.0)
        if gpus:
            actor["num_gpus"] = gpus
        queue = INGRESS_MAX_ONGOING if name == INGRESS else QUEUE_BATCHES * options.max_batch
        low, high = options.replicas.get(name, (1, 1))
        scale: dict = {"num_replicas": low}
        if high > low:
            scale = {
                "num_replicas": "auto",
                "autoscaling_config": {"min_replicas": low, "initial_replicas": low, "max_replicas": high, "target_ongoing_requests": max(1, queue // 2)},
            }
        out[name] = {**scale, "max_ongoing_requests": queue, "ray_actor_options": actor}
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
    import yaml  # the serve extra's; imported here so that options and routing load without it

    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(serve_config(run, options, members, host, port), sort_keys=False), encoding="utf-8")
    return path
