"""Datasets: create, list, describe."""

from fastapi import APIRouter, Query, status

from server.api import problems
from server.api.deps import CurrentUser, blob_store, read, write
from server.api.pagination import Cursor, Limit, Page, cursor_str, page_from
from server.api.routing import OffLoopRoute
from server.api.schemas import DatasetCreate
from server.auth.policy import require_admin, require_engineer, require_reader
from server.datasets import datasets
from server.datasets.schemas import DatasetRead, LabelCounts

router = APIRouter(tags=["datasets"], route_class=OffLoopRoute)


@router.get("/datasets", summary="List datasets (labelers see those assigned to them)")
def list_datasets(who: CurrentUser, cursor: Cursor = None, limit: Limit = 100) -> Page[DatasetRead]:
    after = cursor_str(cursor)
    only = who.datasets if who.role == "labeler" else None
    found = read(lambda db: datasets.list_datasets(db, after=after, limit=limit + 1, only=only))
    return page_from(found, limit, lambda d: d.name)


@router.post(
    "/datasets", status_code=status.HTTP_201_CREATED, summary="Create an empty dataset with branch main", responses=problems.CONFLICT
)
def create_dataset(body: DatasetCreate, who: CurrentUser) -> DatasetRead:
    require_engineer(who, "create datasets")
    return write(
        who,
        "dataset.create",
        body.name,
        lambda db: datasets.create_dataset(db, name=body.name, modality=body.modality, labels=body.labels, author=who.name),
    )


@router.get("/datasets/{name}", summary="Describe a dataset")
def get_dataset(name: str, who: CurrentUser) -> DatasetRead:
    require_reader(who, name)
    return read(lambda db: datasets.dataset_read(datasets.get_dataset(db, name)))


@router.delete(
    "/datasets/{name}",
    summary="Delete a dataset and its history, runs, models and requests (admins; blobs stay until gc)",
)
def delete_dataset(name: str, who: CurrentUser) -> dict:
    require_admin(who, "delete datasets")
    return write(
        who,
        "dataset.delete",
        name,
        lambda db: datasets.delete_dataset(db, name=name),
        detail=lambda r: {k: v for k, v in r.items() if k != "name"},
    )


@router.get("/datasets/{name}/label-counts", summary="How many examples of a revision carry each label, and how many none")
def label_counts(name: str, who: CurrentUser, rev: str | None = Query(None, description="Default: the default branch")) -> LabelCounts:
    require_reader(who, name)
    from server.datasets.history import resolve_rev
    from server.datasets.stats import label_counts as count

    store = blob_store()

    def work(db):
        ds = datasets.get_dataset(db, name)
        commit = resolve_rev(db, ds, rev or ds.default_branch)
        counts = count(db, store, dataset=name, rev=commit.id)
        return LabelCounts(
            commit=commit.id,
            labels={label: counts.get(label, 0) for label in ds.labels},
            unlabeled=counts.get(None, 0),
            total=sum(counts.values()),
        )

    return read(work)
