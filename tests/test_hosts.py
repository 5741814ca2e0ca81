"""Several hosts for real: the API server and two workers in network namespaces, sharing only PostgreSQL, Redis and S3.

Each host has its own network namespace, hostname and S2_HOME, and knows the shared services only by
their addresses on the test's bridge. Everything is driven over HTTP from this process: both workers
train, then one host's worker is killed mid-run and the run finishes on the other host.
"""

import io
import os
import signal
import time
import zipfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import urlsplit

import boto3
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.api.factories import imported
from tests.conftest import S2_BIN, private_pg_database
from tests.factories import write_digits_folder
from tests.hosts import Forwarder, Host, Process, moto_server, network, require_root_and_ip, wait_for_http

DIGITS = [str(d) for d in range(10)]
SPEC = {"epochs": 2, "image_size": 16, "image_channels": 1, "batch_size": 32, "learning_rate": 0.003}
LONG_SPEC = {**SPEC, "epochs": 20}  # long enough to be killed mid-run, short enough to train again on the other host
ENDED = ("succeeded", "failed", "cancelled")
S3_KEYS = {"S2_S3_REGION": "us-east-1", "S2_S3_ACCESS_KEY_ID": "s2-hosts", "S2_S3_SECRET_ACCESS_KEY": "s2-hosts-secret"}
API_PORT = 8000  # each namespace has its own ports


@dataclass
class Worker:
    host: Host
    process: Process


@dataclass
class Cluster:
    """The API host, the worker hosts, and the shared bucket (seen from the root namespace)."""

    api_url: str
    token: str
    server: Process
    workers: list[Worker]
    s3: object
    bucket: str

    def client(self) -> httpx.Client:
        """An admin's HTTP client on the API host's address."""
        return httpx.Client(base_url=f"{self.api_url}/api/v1", headers={"Authorization": f"Bearer {self.token}"}, timeout=60)

    def workers_alive(self) -> float:
        """Workers with a fresh heartbeat, as the API host's /metrics counts them."""
        [line] = [line for line in httpx.get(f"{self.api_url}/metrics").text.splitlines() if line.startswith("s2_workers_alive ")]
        return float(line.split()[1])

    def worker_named(self, hostname: str) -> Worker:
        """The worker whose host has this hostname."""
        [worker] = [w for w in self.workers if w.host.name == hostname]
        return worker

    def bucket_keys(self) -> set[str]:
        """Every object key in the shared bucket."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return {obj["Key"] for page in pages for obj in page.get("Contents", ())}


@pytest.fixture
def cluster(broker_url: str, tmp_path) -> Cluster:
    """A bridge, the forwarders and moto on its address, `s2 serve` on one host and `s2 worker` on two more."""
    require_root_and_ip()
    with ExitStack() as stack:
        database = stack.enter_context(private_pg_database())
        net = stack.enter_context(network(tmp_path / "hosts"))
        postgres = Forwarder(net.gateway, ("127.0.0.1", make_url(database).port))
        stack.callback(postgres.close)
        broker = urlsplit(broker_url)
        redis = Forwarder(net.gateway, (broker.hostname, broker.port))
        stack.callback(redis.close)
        s3_url = stack.enter_context(moto_server(net.gateway, tmp_path / "moto.log"))
        stack.callback(net.stop_processes)  # first on the way out: hosts go before the services they use
        s3 = boto3.session.Session().client(
            "s3",
            endpoint_url=s3_url,
            region_name=S3_KEYS["S2_S3_REGION"],
            aws_access_key_id=S3_KEYS["S2_S3_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_KEYS["S2_S3_SECRET_ACCESS_KEY"],
        )
        bucket = f"s2-hosts-{net.suffix}"
        s3.create_bucket(Bucket=bucket)
        env = {
            "PATH": os.environ["PATH"],
            "LANG": "C.UTF-8",
            "S2_DATABASE_URL": make_url(database).set(host=postgres.address[0], port=postgres.address[1]).render_as_string(False),
            "S2_BROKER_URL": f"redis://{redis.address[0]}:{redis.address[1]}{broker.path}",
            "S2_BLOB_URL": f"s3://{bucket}/blobs",
            "S2_S3_ENDPOINT_URL": s3_url,
            **S3_KEYS,
            "S2_AUTHOR": "hosts@example.com",
            "S2_RUN_STALE_AFTER_S": "4",  # a killed worker's run is taken up again within seconds
            "S2_WORKER_BEAT_S": "1",
            "S2_TORCH_THREADS": "1",  # two trainings at once on a small shared machine
            "S2_ANALYSIS_FOLDS": "0",  # no data-engine cross-fitting after the runs: not what this test is about
        }
        api = net.add_host("api", env)
        token = api.run(S2_BIN, "user", "add", "root", "--role", "admin").stdout.strip().splitlines()[-1]
        server = api.start("serve", S2_BIN, "serve", "--host", api.address, "--port", API_PORT)
        workers = []
        for name in ("w1", "w2"):
            host = net.add_host(name, env)
            workers.append(Worker(host, host.start("worker", S2_BIN, "worker", "--queue", "cpu")))
        wait_for_http(f"http://{api.address}:{API_PORT}/healthz", server, "s2 serve")
        yield Cluster(f"http://{api.address}:{API_PORT}", token, server, workers, s3, bucket)


def digits_zip(tmp_path, limit: int) -> bytes:
    """scikit-learn's digits as a zip of LABEL/FILE.png (an ImageFolder upload)."""
    root = write_digits_folder(tmp_path / "digits", limit)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(root.rglob("*.png")):
            zf.write(path, path.relative_to(root).as_posix())
    return buf.getvalue()


def wait_for(what: str, probe: Callable[[], object], timeout: float = 90) -> object:
    """Poll probe until it returns something truthy; fail after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_run(client: httpx.Client, run_id: int, done: Callable[[dict], bool], what: str, timeout: float = 90) -> dict:
    """Poll GET /runs/{id} until done(run); returns that run."""

    def probe() -> dict | None:
        run = client.get(f"/runs/{run_id}").json()
        return run if done(run) else None

    return wait_for(f"run {run_id} to be {what}", probe, timeout)


def submit(client: httpx.Client, spec: dict) -> dict:
    r = client.post("/datasets/digits/runs", json={"spec": spec})
    assert r.status_code == 201, r.text
    return r.json()


def hostname_of(run: dict) -> str:
    """The host part of a run's worker_host (hostname:pid)."""
    return run["worker_host"].rsplit(":", 1)[0]


def test_two_worker_hosts_train_and_a_killed_hosts_run_finishes_on_the_other(cluster: Cluster, tmp_path):
    with cluster.client() as api:
        assert api.post("/datasets", json={"name": "digits", "modality": "image", "labels": DIGITS}).status_code == 201
        r = api.post("/datasets/digits/imports", files=[("files", ("digits.zip", digits_zip(tmp_path, 500), "application/zip"))])
        assert imported(api, r)["changes"] == 500

        # Both hosts train: each takes one run at a time, so with both listening the two runs go one to each.
        for worker in cluster.workers:
            wait_for(f"{worker.host.name}'s worker to listen", lambda w=worker: " ready." in w.process.output())
        assert cluster.workers_alive() == 2
        runs = [submit(api, SPEC) for _ in range(2)]
        done = [wait_run(api, run["id"], lambda r: r["state"] in ENDED, "finished") for run in runs]
        assert [run["state"] for run in done] == ["succeeded", "succeeded"], [run["error"] for run in done]
        assert {hostname_of(run) for run in done} == {w.host.name for w in cluster.workers}

        # One host's worker dies mid-run (kill -9, its whole process group): the run finishes on the other host.
        long = submit(api, LONG_SPEC)
        running = wait_run(api, long["id"], lambda r: r["state"] == "running" and (r["progress"] or {}).get("step", 0) > 0, "training")
        victim = cluster.worker_named(hostname_of(running))
        [survivor] = [w for w in cluster.workers if w is not victim]
        victim.process.signal(signal.SIGKILL)
        assert victim.process.proc.returncode == -signal.SIGKILL
        final = wait_run(api, long["id"], lambda r: r["state"] in ENDED, "finished after its host died", timeout=120)
        assert final["state"] == "succeeded", final["error"]
        assert final["attempt"] == 2 and hostname_of(final) == survivor.host.name
        assert f"worker {running['worker_host']} stopped during attempt 1" in final["error"]
        assert "retried" in survivor.process.output()  # the surviving host's sweep took the run up
        wait_for("the dead host to drop out of /metrics", lambda: cluster.workers_alive() == 1, timeout=30)
        model = api.get(f"/models/{final['model']}").json()
        assert model["run"] == long["id"] and model["dataset_commit"] == long["dataset_commit"]

    # Blobs went through the shared bucket, never a host's own disk.
    keys = cluster.bucket_keys()
    assert {f"blobs/{model[b][:2]}/{model[b][2:]}" for b in ("weights", "predictions")} <= keys
    assert not [w.host.home for w in cluster.workers if (w.host.home / "s2" / "blobs").exists()]
    assert "Traceback" not in cluster.server.output() + survivor.process.output()
