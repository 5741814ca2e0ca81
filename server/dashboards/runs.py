"""Training runs: the list (`/runs`, `/d/NAME/runs`), and one run live (`/runs/ID`) over Server-Sent Events.

Reads go through the services the REST API calls (server.runs.service) and the same access rule
(server.runs.access): a labeler sees the runs of their datasets only, by list or by URL. The run page
is complete without JavaScript; run.js follows GET /api/v1/runs/ID/events and redraws it in place.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from server.api.deps import read
from server.auth.policy import ENGINEERING
from server.auth.schemas import Principal
from server.dashboards.run_chart import accuracy_chart, loss_chart
from server.errors import Forbidden, InvalidInput
from server.runs import access, service
from server.runs.schemas import RunRead
from server.web.pages import PageRoute, page_user
from server.web.render import page

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SignedIn = Annotated[Principal, Depends(page_user)]
STATES = ("queued", "running", *service.TERMINAL)
PAGE = 50


def duration_s(run: RunRead, now: datetime | None = None) -> float | None:
    """Seconds from start to finish (to now while it runs); None before it started."""
    if run.started_at is None:
        return None
    end = run.finished_at or now
    return (end - run.started_at).total_seconds() if end is not None else None


def human_seconds(seconds: float | None) -> str:
    """12.3 s, 4 m 05 s, 2 h 03 m (run.js: humanSeconds)."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} m"


def when(moment: datetime | None) -> str:
    """A time as the pages print it, in UTC (run.js: when)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def model_dataset(model: str | None) -> str | None:
    """The dataset a model reference (NAME@N) belongs to."""
    return model.rsplit("@", 1)[0] if model else None


HELPERS = {"human_seconds": human_seconds, "when": when, "duration_s": duration_s}


@dataclass
class Filters:
    """The list's filters as the address gives them ("" from the form: any)."""

    dataset: str | None
    state: str | None

    @classmethod
    def parse(cls, dataset: str | None, state: str | None) -> "Filters":
        if state and state not in STATES:
            raise InvalidInput(f"state {state!r} is not one of {', '.join(STATES)}")
        return cls(dataset or None, state or None)

    def query(self, **more: str) -> str:
        """The query string of these filters (and more), for links that keep them."""
        pairs = {"dataset": self.dataset, "state": self.state, **more}
        return urlencode({k: v for k, v in pairs.items() if v})


def _dataset_choices(who: Principal) -> list[str]:
    """The datasets the filter offers: those who may read (the workbench's rule, not a copy of it)."""
    from labeling.overview import visible_datasets

    return [d.name for d in read(lambda db: visible_datasets(db, who, limit=200))]


def _list_page(request: Request, who: Principal, filters: Filters, cursor: str | None, limit: int, base: str) -> Response:
    from server.api.pagination import cursor_int, page_from

    try:
        access.check_run_listing(who, filters.dataset)
    except Forbidden:
        if filters.dataset is not None:
            raise
        # A labeler on /runs: no list of every dataset's runs, but the way to their own.
        return _render_list(request, base, filters, [], None, _dataset_choices(who), choose=True)
    before = cursor_int(cursor)
    found = read(lambda db: service.list_runs(db, dataset=filters.dataset, limit=limit + 1, before=before, state=filters.state))
    runs = page_from(found, limit, lambda r: r.id)
    older = f"{base}?{filters.query(cursor=runs.next_cursor, limit=str(limit) if limit != PAGE else '')}" if runs.next_cursor else None
    choices = _dataset_choices(who) if base == "/runs" else []
    return _render_list(request, base, filters, runs.items, older, choices, first=cursor is None)


def _render_list(request, base, filters, runs, older, choices, choose: bool = False, first: bool = True) -> Response:
    title = f"Runs of {filters.dataset}" if base != "/runs" else "Runs"
    return page(
        request,
        "runs.html",
        title=title,
        base=base,
        filters=filters,
        runs=runs,
        older=older,
        newest=f"{base}?{filters.query()}" if not first else None,
        choices=choices,
        choose=choose,
        states=STATES,
        model_dataset=model_dataset,
        **HELPERS,
    )


@router.get("/runs")
def runs_list(
    request: Request,
    who: SignedIn,
    dataset: str | None = Query(None, max_length=128),
    state: str | None = Query(None, max_length=16),
    cursor: str | None = Query(None, max_length=200),
    limit: int = Query(PAGE, ge=1, le=200),
) -> Response:
    return _list_page(request, who, Filters.parse(dataset, state), cursor, limit, "/runs")


@router.get("/d/{name}/runs")
def dataset_runs(
    request: Request,
    name: str,
    who: SignedIn,
    state: str | None = Query(None, max_length=16),
    cursor: str | None = Query(None, max_length=200),
    limit: int = Query(PAGE, ge=1, le=200),
) -> Response:
    return _list_page(request, who, Filters.parse(name, state), cursor, limit, f"/d/{quote(name, safe='')}/runs")


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: int, who: SignedIn) -> Response:
    run = read(lambda db: access.readable_run(db, who, run_id))
    engineer = who.role in ENGINEERING
    config = {"run": run.model_dump(mode="json"), "engineer": engineer, "terminal": list(service.TERMINAL)}
    return page(
        request,
        "run.html",
        title=f"Run {run.id} · {run.dataset}",
        run=run,
        engineer=engineer,
        config=config,
        p=run.progress or {},
        live=run.state not in service.TERMINAL,
        loss=loss_chart(run.progress),
        accuracy=accuracy_chart(run.progress),
        model_dataset=model_dataset,
        now=datetime.now(tz=run.created_at.tzinfo),
        **HELPERS,
    )
