"""Model versions: the list, and the compare page of two versions (metrics, per class, confusion, flips)."""

from fastapi import APIRouter

from server.web.pages import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)
