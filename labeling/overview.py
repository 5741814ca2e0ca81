"""What the labeler's pages show, read through the same services as the API (no SQL in a page handler)."""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labeling.guesses import Guess, guesses, guessing_model
from server.auth.policy import ENGINEERING, require_reader
from server.auth.schemas import Principal
from server.blobs import BlobStore
from server.datasets.datasets import dataset_read, get_dataset, list_datasets
from server.datasets.examples import get_example
from server.datasets.history import ahead_behind, blame, log
from server.datasets.models import Branch, Dataset, StagedEdit
from server.datasets.refs import list_branches, list_tags
from server.datasets.schemas import BlameEntry, BranchRead, CommitRead, DatasetRead, ExampleRead
from server.errors import NotFound
from server.registry.service import list_models
from server.runs.models import ModelVersion
from server.runs.schemas import ModelRead
from server.runs.service import watched_branches

BRANCHES_SHOWN = 50
TAGS_SHOWN = 20


def visible_datasets(db: Session, who: Principal, after: str | None = None, limit: int = 100) -> list[DatasetRead]:
    """The datasets who may see: all of them for engineers and admins, the assigned ones for labelers."""
    return list_datasets(db, after=after, limit=limit, only=who.datasets if who.role not in ENGINEERING else None)


@dataclass
class BranchView:
    branch: BranchRead
    staged: int
    editable: bool  # who may stage edits on it
    ahead: int = 0  # commits it has that the default branch lacks
    behind: int = 0  # commits the default branch has that it lacks
    watched: bool = False  # every new head is trained


@dataclass
class DatasetView:
    dataset: DatasetRead
    branches: list[BranchView]
    more_branches: bool
    commits: list[CommitRead]
    model: ModelRead | None
    engineer: bool
    staged_total: int = 0
    tags: list[tuple[str, str]] = field(default_factory=list)  # (name, commit id)
    more_tags: bool = False
    queues: dict[str, int] = field(default_factory=dict)  # review queues (the data engine's among them) and their sizes
    labelstudio: dict | None = None  # the Label Studio link's status (labeling.labelstudio.bridge.status_of), None: not linked


def staged_counts(db: Session, dataset_id: int) -> dict[str, int]:
    """How many edits wait uncommitted on each branch of a dataset."""
    rows = db.execute(
        select(Branch.name, func.count(StagedEdit.key))
        .join(StagedEdit, StagedEdit.branch_id == Branch.id)
        .where(Branch.dataset_id == dataset_id)
        .group_by(Branch.name)
    )
    return dict(rows.all())


def _utc(when: datetime | None) -> datetime | None:
    """A stored time in UTC (SQLite hands back naive times, stored as UTC)."""
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def link_status(db: Session, ds: Dataset) -> dict | None:
    """The dataset's Label Studio link as the bridge reports it (never its token), times in UTC; None when not linked."""
    from labeling.labelstudio.bridge import status_of
    from labeling.labelstudio.models import LabelStudioLink

    link = db.get(LabelStudioLink, ds.id)
    if link is None:
        return None
    status = status_of(db, ds, link)
    for k in ("connected_at", "last_push_at", "last_pull_at"):
        status[k] = _utc(status[k])
    if urlsplit(status["project_url"]).scheme not in ("http", "https"):
        status["project_url"] = None  # shown as text, never a link to another scheme
    return status


def dataset_view(db: Session, who: Principal, name: str) -> DatasetView:
    """A dataset's home: its branches (and which who may label on), recent commits, the guessing model."""
    require_reader(who, name)
    ds = get_dataset(db, name)
    counts = staged_counts(db, ds.id)
    found = list_branches(db, dataset=name, limit=BRANCHES_SHOWN + 1)
    views = [BranchView(branch=b, staged=counts.get(b.name, 0), editable=not b.protected) for b in found[:BRANCHES_SHOWN]]
    views.sort(key=lambda v: (v.branch.name != ds.default_branch, v.branch.name))
    watched = watched_branches(db, dataset=name)
    default_head = next((v.branch.head for v in views if v.branch.name == ds.default_branch), None)
    for v in views:
        v.watched = v.branch.name in watched
        if default_head is not None and v.branch.name != ds.default_branch and v.branch.head != default_head:
            v.ahead, v.behind = ahead_behind(db, dataset=name, rev=v.branch.head, base=default_head)
    tags = list_tags(db, dataset=name, limit=TAGS_SHOWN + 1)
    commits, _ = log(db, dataset=name, rev=None, limit=8)
    model = guessing_model(db, ds.id)
    from labeling.review import queue_counts
    from server.registry.service import model_read

    return DatasetView(
        dataset=dataset_read(ds),
        branches=views,
        more_branches=len(found) > BRANCHES_SHOWN,
        commits=commits,
        model=model_read(db, model, ds.name) if model is not None else None,
        engineer=who.role in ENGINEERING,
        staged_total=sum(counts.values()),
        tags=tags[:TAGS_SHOWN],
        more_tags=len(tags) > TAGS_SHOWN,
        queues=queue_counts(db, ds.id),
        labelstudio=link_status(db, ds),
    )


@dataclass
class ExampleView:
    dataset: DatasetRead
    rev: str
    example: ExampleRead
    history: list[BlameEntry]
    predictions: list[tuple[ModelRead, Guess | None]] = field(default_factory=list)
    content: str | None = None  # a text or tabular example's input
    features: dict | None = None  # a tabular example's row


MODELS_SHOWN = 20
TEXT_SHOWN = 1 << 20  # a longer text is shown cut here


def example_view(db: Session, blobs: BlobStore, who: Principal, name: str, key: str, rev: str | None) -> ExampleView:
    """One example at rev with who changed its label, when, in which commit, and what each model predicted."""
    require_reader(who, name)
    ds = get_dataset(db, name)
    rev = rev or ds.default_branch
    example = get_example(db, blobs, dataset=name, key=key, rev=rev)
    try:
        history = blame(db, dataset=name, key=key, rev=rev)
    except NotFound:
        history = []
    models = list_models(db, dataset=name, limit=MODELS_SHOWN)
    rows = {
        m.version: m
        for m in db.scalars(
            select(ModelVersion).where(ModelVersion.dataset_id == ds.id, ModelVersion.version.in_([m.version for m in models]))
        )
    }
    predictions = [(m, guesses(rows[m.version], blobs, ds.labels, [key]).get(key)) for m in models]
    view = ExampleView(dataset=dataset_read(ds), rev=rev, example=example, history=list(reversed(history)), predictions=predictions)
    if ds.modality != "image":
        view.content = example.inline if example.inline is not None else blobs.get(example.input)[:TEXT_SHOWN].decode("utf-8", "replace")
        if ds.modality == "tabular":
            import json

            try:
                view.features = json.loads(view.content)
            except ValueError:
                view.features = None
    return view
