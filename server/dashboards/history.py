"""The dataset's history as builds: the commit timeline with each commit's model and its metric change, and charts.

`/d/NAME/commits?branch=B` pages the history like `s2 log` (the walk's frontier is the cursor, so a
deep page costs what the first does); each commit shows its author, message and size of change, and
its build: the newest model trained on it with the headline metric and how that moved against the
model of the commit before (green better, red worse), or the state of the run building it. Charts
draw each metric over the models on the page, overall and per class.

`/d/NAME/fragments/labels?rev=R` is the label distribution of a revision, loaded by htmx into the
dataset home after it paints (the first count at ten million rows is a column scan).
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from server.api.deps import blob_store, read
from server.api.pagination import encode_cursor, history_frontier
from server.auth.policy import require_reader
from server.auth.schemas import Principal
from server.blobs import BlobStore
from server.datasets.schemas import CommitRead, DatasetRead
from server.registry.builds import Build
from server.web.charts import Series, bar_rows, line_chart
from server.web.pages import PageRoute, page_user
from server.web.render import page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SignedIn = Annotated[Principal, Depends(page_user)]

PAGE = 50  # commits per page of the timeline
LOOKAHEAD = 50  # older commits read past the page to find the model the page's oldest one is measured against


@dataclass
class TimelineView:
    dataset: DatasetRead
    rev: str
    branches: list[str]
    commits: list[tuple[CommitRead, Build]]
    next_cursor: str | None
    first_page: bool
    charts: list[Markup]


def _charts(dataset: DatasetRead, commits: list[tuple[CommitRead, Build]]) -> list[Markup]:
    """Each headline metric over the page's models (oldest first), and F1 per class."""
    models, seen = [], set()
    for _, build in reversed(commits):
        if build.model is not None and build.model.version not in seen:
            seen.add(build.model.version)
            models.append(build.model)
    if not models:
        return []
    x = [f"v{m.version}" for m in models]
    overall = line_chart(
        "Accuracy and macro F1 on the eval set, by model version",
        x,
        [Series("accuracy", [m.metrics.get("accuracy") for m in models]), Series("macro F1", [m.metrics.get("macro_f1") for m in models])],
        y_min=0.0,
        y_max=1.0,
        x_caption="model",
    )
    per_class = line_chart(
        "F1 per class on the eval set, by model version",
        x,
        [Series(label, [m.metrics.get("per_class", {}).get(label, {}).get("f1") for m in models]) for label in dataset.labels[:10]],
        y_min=0.0,
        y_max=1.0,
        x_caption="model",
    )
    return [overall, per_class]


def timeline_view(db: Session, who: Principal, name: str, rev: str | None, cursor: str | None) -> TimelineView:
    """A page of the history of rev (default: the default branch), newest first, each commit with its build."""
    from server.datasets.datasets import dataset_read, get_dataset
    from server.datasets.history import log
    from server.datasets.refs import list_branches
    from server.registry.builds import builds_of

    require_reader(who, name)
    ds = get_dataset(db, name)
    rev = rev or ds.default_branch
    frontier = history_frontier(cursor)
    commits, rest = log(db, dataset=name, rev=rev, frontier=frontier, limit=PAGE)
    older = log(db, dataset=name, rev=rev, frontier=rest, limit=LOOKAHEAD)[0] if rest else []
    builds = builds_of(db, ds.id, name, [c.id for c in commits + older])
    view = dataset_read(ds)
    rows = [(c, builds[c.id]) for c in commits]
    return TimelineView(
        dataset=view,
        rev=rev,
        branches=[b.name for b in list_branches(db, dataset=name, limit=200)],
        commits=rows,
        next_cursor=encode_cursor({"f": rest}) if rest else None,
        first_page=frontier is None,
        charts=_charts(view, rows),
    )


@router.get("/d/{name}/commits")
def commits_page(
    request: Request, name: str, who: SignedIn, branch: str | None = Query(None), cursor: str | None = Query(None)
) -> Response:
    view = read(lambda db: timeline_view(db, who, name, branch, cursor))
    return page(request, "commits.html", title=f"History of {name}", view=view, dataset=view.dataset)


def label_distribution(db: Session, blobs: BlobStore, who: Principal, name: str, rev: str | None) -> dict:
    """The label counts of a revision with a bar each, every label of the dataset listed (zeros too)."""
    from server.datasets.datasets import get_dataset
    from server.datasets.history import resolve_rev
    from server.datasets.stats import label_counts

    require_reader(who, name)
    ds = get_dataset(db, name)
    commit = resolve_rev(db, ds, rev or ds.default_branch)
    counts = label_counts(db, blobs, dataset=name, rev=commit.id)
    total = sum(counts.values())
    items = [(label, counts.get(label, 0)) for label in ds.labels] + [("(unlabeled)", counts.get(None, 0))]
    return {"commit": commit.id, "total": total, "rows": bar_rows(items, total=total)}


@router.get("/d/{name}/fragments/labels")
def labels_fragment(request: Request, name: str, who: SignedIn, rev: str | None = Query(None)) -> Response:
    store = blob_store()
    found = read(lambda db: label_distribution(db, store, who, name, rev))
    return page(request, "labels_fragment.html", **found, dataset_name=name)
