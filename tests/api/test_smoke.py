"""The server starts, migrates, answers health and metrics, and serves its docs without the internet."""


def test_server_answers_health_docs_and_metrics(api):
    import httpx

    assert httpx.get(f"{api.url}/healthz").json() == {"status": "ok"}
    docs = httpx.get(f"{api.url}/docs")
    assert docs.status_code == 200 and "/static/swagger-ui/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()  # every asset is served by us
    bundle = httpx.get(f"{api.url}/static/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text
    assert httpx.get(f"{api.url}/static/swagger-ui/swagger-ui.css").status_code == 200
    with api.admin as c:
        assert c.get("/me").json()["role"] == "admin"
    metrics = httpx.get(f"{api.url}/metrics").text
    assert 's2_http_requests_total{method="GET",route="/api/v1/me",status="200"} 1.0' in metrics
    assert 's2_queue_depth{queue="cpu"} 0.0' in metrics
    assert 's2_training_runs{state="queued"} 0.0' in metrics


def test_metrics_time_each_route_by_its_template_and_count_live_workers(api):
    """A request just answered is one sample of the latency histogram, under its route template; the workers gauge is there."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    with api.admin as c:
        assert c.get("/datasets/ghost").status_code == 404
    families = {f.name: f for f in text_string_to_metric_families(httpx.get(f"{api.url}/metrics").text)}
    latency = families["s2_http_request_duration_seconds"]
    assert latency.type == "histogram"
    route = {"method": "GET", "route": "/api/v1/datasets/{name}"}  # the template, not /datasets/ghost: bounded labels
    samples = {(s.name, s.labels.get("le")): s.value for s in latency.samples if {k: s.labels.get(k) for k in route} == route}
    assert samples[("s2_http_request_duration_seconds_count", None)] == 1.0, samples
    assert samples[("s2_http_request_duration_seconds_bucket", "+Inf")] == 1.0, samples
    assert 0 < samples[("s2_http_request_duration_seconds_sum", None)] < 60, samples
    workers = families["s2_workers_alive"]
    assert workers.type == "gauge" and [s.value for s in workers.samples] == [0.0]  # none started here


def test_metrics_add_up_over_several_server_processes(s2env, broker_url, tmp_path):
    """`s2 serve --workers 2`: /metrics counts every request, whichever process answered it."""
    import re

    import httpx

    from tests.api.conftest import free_port, start_server

    port = free_port()
    proc = start_server({**s2env, "S2_BROKER_URL": broker_url}, tmp_path / "server.log", port, "--workers", "2")
    try:
        for _ in range(40):  # new connections: both processes accept some of them
            assert httpx.get(f"http://127.0.0.1:{port}/api/v1/me").status_code == 401
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        counted = re.search(r's2_http_requests_total\{method="GET",route="/api/v1/me",status="401"\} (\S+)', text)
        assert counted and float(counted.group(1)) == 40.0, text
        assert 's2_training_runs{state="queued"} 0.0' in text
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_serve_migrates_an_empty_postgresql_database_before_it_listens(tmp_path, broker_url):
    """Production start: an empty database gets every Alembic revision from `s2 serve` itself, then the API works."""
    import os
    import uuid

    import httpx
    from sqlalchemy import create_engine, text

    from server.db import HEAD_REVISION
    from tests.api.conftest import free_port, start_server
    from tests.conftest import PG_HOST, _admin, stop_process

    name = f"s2t_empty_{uuid.uuid4().hex[:10]}"
    with _admin().connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{PG_HOST}/{name}"
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("S2_")},
            "S2_HOME": str(tmp_path / "home"),
            "S2_DATABASE_URL": url,
            "S2_BROKER_URL": broker_url,
        }
        port = free_port()
        proc = start_server(env, tmp_path / "serve.log", port)
        try:
            engine = create_engine(url)
            with engine.connect() as conn:
                assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION
            engine.dispose()
            assert httpx.get(f"http://127.0.0.1:{port}/api/v1/datasets").status_code == 401  # up, and guarded
        finally:
            stop_process(proc)
    finally:
        with _admin().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
