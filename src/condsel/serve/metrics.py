"""The service's Prometheus metrics, through ``ray.serve.metrics``.

Ray Serve tags each series with its deployment, replica and application, and
Ray's metrics agent exports them on its Prometheus endpoint beside Serve's own
(``ray_serve_*``), prefixed ``ray_``.
"""

from __future__ import annotations

from ray.serve import metrics

LATENCY_BOUNDARIES_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
BATCH_BOUNDARIES = [1, 2, 4, 8, 16, 32, 64, 128]
COST_BOUNDARIES = [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0]  # per video, in GFLOPs or ms


class IngressMetrics:
    """Requests by chosen model and HTTP status, end-to-end latency by chosen model, where the policy
    stopped (stage = members run), the realised cost per video in each unit, and the operating threshold."""

    def __init__(self):
        self.requests = metrics.Counter(
            "condsel_requests", description="Predictions served, by chosen model", tag_keys=("model",)
        )
        self.failures = metrics.Counter(
            "condsel_request_failures", description="Requests answered with an error, by HTTP status", tag_keys=("status",)
        )
        self.latency = metrics.Histogram(
            "condsel_request_seconds",
            description="Seconds from upload received to answer (decoding included), by chosen model",
            boundaries=LATENCY_BOUNDARIES_S,
            tag_keys=("model",),
        )

        self.exits = metrics.Counter(
            "condsel_stage_exits", description="Answers by the stage the policy stopped at (members run) and its model",
            tag_keys=("stage", "model"),
        )
        self.cost = metrics.Histogram(
            "condsel_video_cost", description="Realised cost per video, by unit (gflops: multiply-adds; ms: profiled)",
            boundaries=COST_BOUNDARIES, tag_keys=("unit",),
        )
        self.threshold = metrics.Gauge("condsel_threshold", description="The operating threshold the controller serves at")
        self.shedding = metrics.Gauge("condsel_shedding", description="1 while the controller sheds to cheaper points under load")

    def served(self, answer: dict) -> None:
        """One answer of ``POST /v1/predict``."""
        model = answer["model"]
        self.requests.inc(tags={"model": model})
        self.latency.observe(answer["seconds"], tags={"model": model})
        self.exits.inc(tags={"stage": str(len(answer["members"])), "model": model})
        for unit, value in answer["cost"].items():
            self.cost.observe(value, tags={"unit": unit})

    def control(self, threshold: float, shedding: bool) -> None:
        self.threshold.set(threshold)
        self.shedding.set(float(shedding))

    def failed(self, status: int) -> None:
        self.failures.inc(tags={"status": str(status)})


class MemberMetrics:
    """Batch sizes and forward-pass seconds by member: one per process, so a colocated service's members share it."""

    def __init__(self):
        self.batch_size = metrics.Histogram(
            "condsel_batch_size", description="Videos per forward batch, by member", boundaries=BATCH_BOUNDARIES,
            tag_keys=("member",),
        )
        self.batch_seconds = metrics.Histogram(
            "condsel_batch_seconds", description="Seconds per forward batch (view sampling included), by member",
            boundaries=LATENCY_BOUNDARIES_S, tag_keys=("member",),
        )

    def batch(self, member: str, size: int, seconds: float) -> None:
        self.batch_size.observe(size, tags={"member": member})
        self.batch_seconds.observe(seconds, tags={"member": member})
