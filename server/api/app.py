"""The FastAPI application: routers per domain, problem+json errors, /healthz, /metrics, offline /docs."""

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles

from server.api import problems
from server.api.inputs import RefuseNul
from server.api.limits import BodyLimitMiddleware
from server.api.metrics import MetricsMiddleware
from server.web.headers import SecurityHeaders

API = "/api/v1"


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Migrate the database to head before the first request (`alembic upgrade head`)."""
    import anyio.to_thread

    from server.config import get_settings
    from server.datasets import compaction
    from server.db import get_engine

    get_engine()
    compaction.run_in_background()  # a checkpoint costs O(table): never inside a request
    # Blocking work (database, blobs) runs in this many threads; more than a few only adds
    # contention for the GIL and the connection pool, and requests then wait longer in total.
    anyio.to_thread.current_default_thread_limiter().total_tokens = get_settings().api_threads
    yield


def swagger_assets() -> Path:
    """Swagger UI's files, installed as package data of fastapi-offline (served by us, never from a CDN)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def create_app() -> FastAPI:
    """A new app wired to the configured database and blob store."""
    from importlib.metadata import version

    from server.api.routes import (
        branches,
        commits,
        datasets,
        edits,
        engine,
        examples,
        imports,
        labelstudio,
        maintenance,
        merge_requests,
        models,
        queues,
        runs,
        users,
    )

    app = FastAPI(
        title="s2",
        version=version("s2"),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Versioned labeled datasets, training on every commit, model versions compared like builds. "
        "Authenticate with `Authorization: Bearer TOKEN` (`s2 user token NAME` issues one). "
        "Lists are paged: pass a page's `next_cursor` back as `?cursor=`. Errors are `application/problem+json`.",
    )
    problems.install(app)
    problems.document(app)
    app.add_middleware(RefuseNul)
    # Reads the app's schema (which operations need a token) when the first request builds the middleware stack.
    app.add_middleware(BodyLimitMiddleware, openapi=lambda: app.openapi(), uploads=[("POST", f"{API}/datasets/{{name}}/imports")])
    app.add_middleware(SecurityHeaders)
    app.add_middleware(MetricsMiddleware)  # outermost: it times and counts the 413s too
    for module in (
        datasets,
        branches,
        commits,
        examples,
        edits,
        engine,
        queues,
        imports,
        runs,
        models,
        merge_requests,
        users,
        maintenance,
        labelstudio,
    ):
        app.include_router(module.router, prefix=API, responses=problems.COMMON)
    app.mount("/static/swagger-ui", StaticFiles(directory=swagger_assets()), name="swagger-ui")
    from labeling import pages as labeling_pages
    from server import dashboards
    from server.web import pages as web_pages

    app.include_router(web_pages.router)
    app.include_router(labeling_pages.router)
    app.include_router(dashboards.router)

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title="s2 API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon.png",
        )

    @app.get("/healthz", tags=["service"], summary="Liveness and database reachability", responses=problems.responses(503))
    def healthz():
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        from server.api.deps import read

        try:
            read(lambda db: db.execute(text("SELECT 1")))
        except SQLAlchemyError as exc:
            return problems.problem(503, f"database unreachable: {exc.__class__.__name__}", "database")
        return {"status": "ok"}

    @app.get(
        "/metrics",
        tags=["service"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        from server.api.metrics import render

        return Response(render(), media_type=CONTENT_TYPE_LATEST)

    return app
