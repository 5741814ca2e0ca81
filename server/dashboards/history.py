"""The dataset's history as builds: the commit timeline with each commit's model and its metric change, and charts."""

from fastapi import APIRouter

from server.web.pages import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)
