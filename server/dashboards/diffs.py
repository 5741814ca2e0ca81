"""The diff between two revisions: counts, the from-to matrix of relabels, and the changed examples, paged."""

from fastapi import APIRouter

from server.web.pages import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)
