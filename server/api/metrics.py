"""Prometheus metrics: requests and latency per route (ASGI middleware), runs and queue depth (read at scrape)."""
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

API = "/api/v1"
REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("s2_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram("s2_http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"],
                    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)
RUNS = Gauge("s2_training_runs", "Training runs by state", ["state"], registry=REGISTRY)
QUEUE_DEPTH = Gauge("s2_queue_depth", "Training runs waiting for a worker, by queue", ["queue"], registry=REGISTRY)
WORKERS = Gauge("s2_workers_alive", "Workers that reported a heartbeat recently", registry=REGISTRY)


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


def render() -> bytes:
    """The text exposition of every metric, with run gauges refreshed from the database."""
    from server.api.deps import read
    from server.runs.service import run_counts

    counts = read(run_counts)
    for state in ("queued", "running", "succeeded", "failed", "cancelled"):
        RUNS.labels(state).set(counts["states"].get(state, 0))
    for queue in ("cpu", "gpu"):
        QUEUE_DEPTH.labels(queue).set(counts["queued"].get(queue, 0))
    WORKERS.set(counts["workers"])
    return generate_latest(REGISTRY)
