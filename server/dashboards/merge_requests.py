"""Merge requests in the browser: the list with a form to open one, and one request with its diff, check,
conflicts (both labels side by side, a choice for each), discussion, approval and merge.

The pages read through server/merge_requests/service.py, as the REST routes do; every write goes
from the page's module (static/mr.js) to the REST API, so the same rules hold for both: readers of the
dataset open, comment, and (as the request's author) resolve and close; engineers approve and merge.
"""

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from server.api.deps import blob_store, read
from server.api.pagination import cursor_int, encode_cursor
from server.auth.policy import ENGINEERING, require_reader
from server.auth.schemas import Principal
from server.datasets.schemas import DatasetRead
from server.merge_requests.schemas import MergeRequestDetail, MergeRequestRead
from server.web.pages import PageRoute, page_user
from server.web.render import page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SignedIn = Annotated[Principal, Depends(page_user)]
PAGE = 50
STATES = ("open", "merged", "closed", "all")


@dataclass
class ListView:
    dataset: DatasetRead
    state: str
    requests: list[MergeRequestRead]
    next_cursor: str | None
    branches: list[str]


def list_view(db, who: Principal, name: str, state: str, cursor: str | None) -> ListView:
    from server.datasets.datasets import dataset_read, get_dataset
    from server.datasets.refs import list_branches
    from server.errors import InvalidInput
    from server.merge_requests.service import list_requests

    require_reader(who, name)
    if state not in STATES:
        raise InvalidInput(f"state {state!r} is not one of {', '.join(STATES)}")
    ds = get_dataset(db, name)
    found = list_requests(db, dataset=name, state=None if state == "all" else state, before=cursor_int(cursor), limit=PAGE + 1)
    return ListView(
        dataset=dataset_read(ds),
        state=state,
        requests=found[:PAGE],
        next_cursor=encode_cursor(found[PAGE - 1].number) if len(found) > PAGE else None,
        branches=[b.name for b in list_branches(db, dataset=name, limit=500)],
    )


@router.get("/d/{name}/merge-requests")
def requests_page(request: Request, name: str, who: SignedIn, state: str = Query("open"), cursor: str | None = Query(None)) -> Response:
    view = read(lambda db: list_view(db, who, name, state, cursor))
    config = {"dataset": name}
    return page(request, "mr_list.html", title=f"Merge requests of {name}", view=view, dataset=view.dataset, config=config)


@router.get("/d/{name}/merge-requests/{number}")
def request_page(request: Request, name: str, number: int, who: SignedIn) -> Response:
    from server.datasets.datasets import dataset_read, get_dataset
    from server.merge_requests.service import request_detail

    store = blob_store()

    def view(db) -> tuple[DatasetRead, MergeRequestDetail]:
        require_reader(who, name)
        return dataset_read(get_dataset(db, name)), request_detail(db, store, dataset=name, number=number)

    dataset, mr = read(view)
    engineer = who.role in ENGINEERING
    return page(
        request,
        "mr.html",
        title=f"{mr.title} · {mr.id}",
        dataset=dataset,
        mr=mr,
        engineer=engineer,
        may_resolve=engineer or who.name == mr.author,
        config={"dataset": name, "number": number},
    )


@router.get("/d/{name}/merge-requests/{number}/check")
def check_fragment(request: Request, name: str, number: int, who: SignedIn) -> Response:
    """The check panel alone, polled by the request's page: a watched source branch trains on each commit."""
    from server.datasets.datasets import dataset_read, get_dataset
    from server.merge_requests.service import get_request, request_check

    def view(db):
        require_reader(who, name)
        _, mr = get_request(db, dataset=name, number=number)
        return dataset_read(get_dataset(db, name)), mr.source, request_check(db, dataset=name, number=number)

    dataset, source, check = read(view)
    if check is None:  # merged or closed since the page was opened: stop polling (htmx stops on 286)
        return Response(status_code=286)
    return page(request, "mr_check.html", dataset=dataset, ds=quote(name, safe=""), source=source, check=check)
