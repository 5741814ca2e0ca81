"""Training runs: the list, and one run live over Server-Sent Events."""

from fastapi import APIRouter

from server.web.pages import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)
