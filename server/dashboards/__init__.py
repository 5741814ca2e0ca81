"""Dashboards: the pages of anyone comparing model versions (history with build status, diffs, runs,
models and compare, merge requests), in the workbench's layout, assets and rules.

Each page module owns its URLs under /d/NAME/... (or /runs/...) and reads through the services
the API uses; no SQL in a page handler. Templates live in server/dashboards/templates, scripts and
styles in server/dashboards/static (served under /assets/dashboards/).
"""

from fastapi import APIRouter

from server.dashboards import diffs, history, merge_requests, models, runs

router = APIRouter(include_in_schema=False)
for module in (history, diffs, models, runs, merge_requests):
    router.include_router(module.router)
