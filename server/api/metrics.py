"""Prometheus metrics: requests and latency per route (ASGI middleware), runs and queue depth (read at scrape).

With several server processes (`s2 serve --workers N`) each one writes its request counts to
PROMETHEUS_MULTIPROC_DIR (prometheus_client's own convention, set by `s2 serve`) and any
of them answers /metrics with the sum over all of them.
"""

import os
import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

API = "/api/v1"
REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("s2_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram(
    "s2_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (not its raw path: bounded labels)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def recording_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            if template != "unmatched" and scope["path"].startswith(API) and not template.startswith(API):
                template = API + template  # routes of included routers know their path below the prefix only
            REQUESTS.labels(scope["method"], template, str(status[0])).inc()
            LATENCY.labels(scope["method"], template).observe(time.perf_counter() - start)


class RunsCollector:
    """Gauges read from the database at scrape time: the same answer from every server process."""

    def collect(self):
        from server.api.deps import read
        from server.runs.service import run_counts

        counts = read(run_counts)
        runs = GaugeMetricFamily("s2_training_runs", "Training runs by state", labels=["state"])
        for state in ("queued", "running", "succeeded", "failed", "cancelled"):
            runs.add_metric([state], counts["states"].get(state, 0))
        depth = GaugeMetricFamily("s2_queue_depth", "Training runs waiting for a worker, by queue", labels=["queue"])
        for queue in ("cpu", "gpu"):
            depth.add_metric([queue], counts["queued"].get(queue, 0))
        yield runs
        yield depth
        yield GaugeMetricFamily("s2_workers_alive", "Workers that reported a heartbeat recently", value=counts["workers"])


RUNS_REGISTRY = CollectorRegistry(auto_describe=False)
RUNS_REGISTRY.register(RunsCollector())


def render() -> bytes:
    """The text exposition of every metric: request metrics (summed over server processes) and run gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        requests = generate_latest(merged)
    else:
        requests = generate_latest(REGISTRY)
    return requests + generate_latest(RUNS_REGISTRY)
