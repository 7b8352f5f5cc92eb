"""The service's Prometheus metrics, through ``ray.serve.metrics``.

Ray Serve tags each series with its deployment, replica and application, and
Ray's metrics agent exports them on its Prometheus endpoint beside Serve's own
(``ray_serve_*``), prefixed ``ray_``.
"""

from __future__ import annotations

from ray.serve import metrics

LATENCY_BOUNDARIES_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
BATCH_BOUNDARIES = [1, 2, 4, 8, 16, 32, 64, 128]


class IngressMetrics:
    """Requests by chosen model and HTTP status, and end-to-end latency by chosen model."""

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

    def served(self, model: str, seconds: float) -> None:
        self.requests.inc(tags={"model": model})
        self.latency.observe(seconds, tags={"model": model})

    def failed(self, status: int) -> None:
        self.failures.inc(tags={"status": str(status)})


class MemberMetrics:
    """Batch sizes and forward-pass seconds of one member deployment."""

    def __init__(self):
        self.batch_size = metrics.Histogram(
            "condsel_batch_size", description="Videos per forward batch", boundaries=BATCH_BOUNDARIES
        )
        self.batch_seconds = metrics.Histogram(
            "condsel_batch_seconds", description="Seconds per forward batch (view sampling included)", boundaries=LATENCY_BOUNDARIES_S
        )

    def batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
