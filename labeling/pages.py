"""The labeler's pages: the datasets they may see, a dataset's home, the workbench, one example's history.

URLs are stable so people can share them: `/`, `/d/NAME`, `/d/NAME/label?branch=B&queue=Q`,
`/d/NAME/examples/KEY?rev=R`. Each handler reads through labeling.overview and the services the
API uses; the workbench itself is a small ES module (labeling/static/workbench.js) over the REST API.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from server.api.deps import blob_store, read
from server.auth.schemas import Principal
from server.web.pages import PageRoute, page_user
from server.web.render import page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SignedIn = Annotated[Principal, Depends(page_user)]


def _number(name: str, value: str | None) -> float | None:
    from server.errors import InvalidInput

    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidInput(f"{name} {value!r} is not a number between 0 and 1") from None


@router.get("/")
def home(request: Request, who: SignedIn) -> Response:
    from labeling.overview import visible_datasets

    found = read(lambda db: visible_datasets(db, who, limit=200))
    return page(request, "home.html", title="Datasets", datasets=found)


@router.get("/d/{name}")
def dataset(request: Request, name: str, who: SignedIn) -> Response:
    from labeling.overview import dataset_view

    view = read(lambda db: dataset_view(db, who, name))
    return page(request, "dataset.html", title=name, view=view, dataset=view.dataset)


@router.get("/d/{name}/label")
def workbench(
    request: Request,
    name: str,
    who: SignedIn,
    branch: str | None = Query(None),
    queue: str = Query("all"),
    label: str | None = Query(None),
    predicted: str | None = Query(None),
    min_confidence: str | None = Query(None),
    max_confidence: str | None = Query(None),
) -> Response:
    from labeling.overview import dataset_view
    from labeling.queues import Filters, check_filters, queue_names
    from server.engine.consensus import votes_required
    from server.errors import NotFound

    view = read(lambda db: dataset_view(db, who, name))
    queues = read(lambda db: queue_names(db, name))
    votes = read(lambda db: votes_required(db, dataset=name, queue=queue))
    if queue not in queues:
        raise NotFound(f"no queue '{queue}' in dataset '{name}': the queues are {', '.join(queues)}")
    # The filter form sends empty fields for "any". A consensus queue shows no model guess: none to filter on.
    on_guess = (
        (None, None, None)
        if votes
        else (predicted or None, _number("min_confidence", min_confidence), _number("max_confidence", max_confidence))
    )
    filters = check_filters(view.dataset.labels, Filters(label or None, *on_guess))
    branch = branch or view.dataset.default_branch
    here = next((b for b in view.branches if b.branch.name == branch), None)
    if here is None:
        raise NotFound(f"no branch '{branch}' in dataset '{name}'")
    config = {
        "dataset": name,
        "branch": branch,
        "queue": queue,
        "filters": {k: v for k, v in vars(filters).items() if v is not None},
        "modality": view.dataset.modality,
        "labels": view.dataset.labels,
        "editable": here.editable,
        "user": who.name,
        "defaultBranch": view.dataset.default_branch,
        "votes": votes,  # a consensus queue: a label is a vote (the others' stay hidden), not a staged edit
    }
    return page(
        request,
        "label.html",
        title=f"Label {name}",
        view=view,
        dataset=view.dataset,
        branch=here,
        queue=queue,
        queues=queues,
        filters=filters,
        config=config,
    )


@router.get("/d/{name}/examples/{key:path}")
def example(request: Request, name: str, key: str, who: SignedIn, rev: str | None = Query(None)) -> Response:
    from labeling.overview import example_view

    store = blob_store()
    view = read(lambda db: example_view(db, store, who, name, key, rev))
    return page(request, "example.html", title=f"{key} · {name}", view=view, dataset=view.dataset)
