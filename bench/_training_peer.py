"""Celery's own round trip, the peer of s2's commit -> running latency: a no-op task on the same
Redis broker with s2's Celery policy (late acks, prefetch 1, solo pool, no gossip/mingle/heartbeat).

    python bench/_training_peer.py      # the tiny worker (the benchmark starts and stops it)

The task stamps the moment it starts into a Redis hash, so a sender configured like s2's (no result
backend) can measure send -> task start on the same clock; `app`, with a Redis result backend,
gives the full round trip with `.get()`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `server` when started as a script

from celery import Celery  # noqa: E402

from server.config import get_settings  # noqa: E402
from server.runs.broker import celery_config  # noqa: E402

QUEUE = "s2bench-peer"
TASK = "s2bench.noop"
STAMPS = "s2bench:peer:started"


def make_app(results: bool) -> Celery:
    """s2's Celery configuration on the same broker; with results, a Redis result backend too."""
    app = Celery("s2bench-peer")
    conf = {**celery_config(get_settings()), "task_default_queue": QUEUE}
    if results:
        conf.update(result_backend=conf["broker_url"], task_ignore_result=False)
    app.conf.update(conf)
    return app


app = make_app(results=True)  # the worker, and the sender for round trips (.get())
sender = make_app(results=False)  # sends like s2's sender(): no result backend to subscribe to
_client: list = []


@app.task(name=TASK)
def noop(tag: str | None = None) -> float:
    """Record when this started (for send -> start); return it (for the round trip)."""
    started = time.time()
    if tag:
        if not _client:
            import redis

            _client.append(redis.Redis.from_url(app.conf.broker_url))
        _client[0].hset(STAMPS, tag, repr(started))
    return started


def started_at(tag: str, timeout: float = 10.0) -> float:
    """Sender side: wait for the stamp of the task sent with tag."""
    import redis

    client = redis.Redis.from_url(app.conf.broker_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = client.hget(STAMPS, tag)
        if value is not None:
            return float(value)
        time.sleep(0.002)
    raise TimeoutError(f"peer task {tag} did not start within {timeout}s")


if __name__ == "__main__":
    import logging

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # as `s2 worker`
    app.worker_main(
        [
            "worker",
            "--pool=solo",
            "--concurrency=1",
            f"--queues={QUEUE}",
            "--hostname=peer@%h",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )
