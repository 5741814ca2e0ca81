"""The server starts, migrates, answers health and metrics, and serves its docs without the internet."""


def test_server_answers_health_docs_and_metrics(api):
    import httpx

    assert httpx.get(f"{api.url}/healthz").json() == {"status": "ok"}
    docs = httpx.get(f"{api.url}/docs")
    assert docs.status_code == 200 and "/static/swagger-ui/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()  # every asset is served by us
    assert httpx.get(f"{api.url}/static/swagger-ui/swagger-ui-bundle.js").status_code == 200
    with api.admin as c:
        assert c.get("/me").json()["role"] == "admin"
    metrics = httpx.get(f"{api.url}/metrics").text
    assert 's2_http_requests_total{method="GET",route="/api/v1/me",status="200"} 1.0' in metrics
    assert 's2_queue_depth{queue="cpu"} 0.0' in metrics
    assert 's2_training_runs{state="queued"} 0.0' in metrics
