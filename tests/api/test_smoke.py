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
