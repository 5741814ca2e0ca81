"""Datasets, branches, tags, history and blame: the versioning engine's read and ref operations."""

import re
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.datasets.commits import commit_id_of
from server.datasets.history import CommitGraph, resolve_rev
from server.datasets.models import Branch, Change, Commit, Dataset, Tag
from server.datasets.schemas import BlameEntry, BranchRead, CommitRead, DatasetRead
from server.errors import AlreadyExists, InvalidInput, NotFound

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
REF_NAME = re.compile(r"^(?!.*\.\.)(?!.*~)[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
MODALITIES = ("image", "text", "tabular")


def check_name(kind: str, name: str, pattern: re.Pattern = NAME) -> str:
    """Refuse names that would be ambiguous in revisions or unsafe in paths."""
    if not pattern.match(name or ""):
        raise InvalidInput(f"invalid {kind} name {name!r}: use letters, digits, '.', '_', '-' (start with a letter or digit)")
    return name


def dataset_read(ds: Dataset) -> DatasetRead:
    """The public view of a dataset row."""
    return DatasetRead(
        name=ds.name, modality=ds.modality, task=ds.task, labels=list(ds.labels), default_branch=ds.default_branch, created_at=ds.created_at
    )


def commit_read(c: Commit) -> CommitRead:
    """The public view of a commit row."""
    return CommitRead(
        id=c.id,
        parents=list(c.parent_ids),
        author=c.author,
        message=c.message,
        created_at=c.created_at,
        changes=c.change_count,
        rows=c.row_count,
    )


def get_dataset(db: Session, name: str) -> Dataset:
    """The dataset called name, or NotFound."""
    ds = db.scalar(select(Dataset).where(Dataset.name == name))
    if ds is None:
        raise NotFound(f"no dataset named '{name}' (create it with: s2 dataset create {name} --modality ... --labels ...)")
    return ds


def get_branch(db: Session, ds: Dataset, name: str | None, *, lock: bool | str = False) -> Branch:
    """The branch called name (default: the dataset's default branch), or NotFound.

    lock=True holds the branch row exclusively until the transaction ends (PostgreSQL; SQLite
    transactions are serialized already), so its staged edits are read and changed by one
    writer at a time; lock="share" lets other sharers in but keeps exclusive lockers out.
    """
    name = name or ds.default_branch
    query = select(Branch).where(Branch.dataset_id == ds.id, Branch.name == name)
    if lock:
        query = query.with_for_update(read=lock == "share")
    branch = db.scalar(query)
    if branch is None:
        raise NotFound(f"no branch '{name}' in dataset '{ds.name}' (create it with: s2 branch {ds.name} {name})")
    return branch


def create_dataset(db: Session, *, name: str, modality: str, labels: list[str], author: str) -> DatasetRead:
    """A new empty dataset with a root commit and its default branch `main`."""
    check_name("dataset", name)
    if modality not in MODALITIES:
        raise InvalidInput(f"invalid modality {modality!r}: choose one of {', '.join(MODALITIES)}")
    labels = [label.strip() for label in labels if label.strip()]
    if len(labels) < 2:
        raise InvalidInput(f"dataset '{name}' needs at least two labels, got {labels!r} (e.g. --labels cat,dog)")
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise InvalidInput(f"label set of dataset '{name}' repeats {', '.join(duplicates)}")
    if db.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
        raise AlreadyExists(f"dataset '{name}' already exists")
    ds = Dataset(name=name, modality=modality, task="classification", labels=labels, default_branch="main")
    db.add(ds)
    try:
        db.flush()
    except IntegrityError:
        raise AlreadyExists(f"dataset '{name}' already exists") from None
    when = datetime.now(UTC)
    message = f"create dataset {name}"
    root = Commit(
        id=commit_id_of(name, [], author, message, when, ""),
        dataset_id=ds.id,
        parent_ids=[],
        first_parent_pk=None,
        generation=0,
        author=author,
        message=message,
        created_at=when,
        change_count=0,
        row_count=0,
        checkpoint_blob=None,
        chain_rows=0,
        chain_length=0,
        label_counts={},
    )
    db.add(root)
    db.flush()
    db.add(Branch(dataset_id=ds.id, name="main", head_pk=root.pk, protected=True))  # the default branch always is
    db.flush()
    return dataset_read(ds)


def list_datasets(db: Session) -> list[DatasetRead]:
    """Every dataset, by name."""
    return [dataset_read(ds) for ds in db.scalars(select(Dataset).order_by(Dataset.name))]


def create_branch(db: Session, *, dataset: str, name: str, from_rev: str | None) -> BranchRead:
    """A new branch at from_rev (default: the default branch's head)."""
    ds = get_dataset(db, dataset)
    check_name("branch", name, REF_NAME)
    if _ref_taken(db, ds, name):
        raise AlreadyExists(f"'{name}' already names a branch or tag in dataset '{dataset}'")
    start = resolve_rev(db, ds, from_rev or ds.default_branch)
    db.add(Branch(dataset_id=ds.id, name=name, head_pk=start.pk, protected=False))
    db.flush()
    return BranchRead(name=name, head=start.id, protected=False)


def list_branches(db: Session, *, dataset: str) -> list[BranchRead]:
    """The dataset's branches and their heads."""
    ds = get_dataset(db, dataset)
    rows = db.execute(
        select(Branch.name, Commit.id, Branch.protected)
        .join(Commit, Commit.pk == Branch.head_pk)
        .where(Branch.dataset_id == ds.id)
        .order_by(Branch.name)
    ).all()
    return [BranchRead(name=n, head=h, protected=p or n == ds.default_branch) for n, h, p in rows]


def create_tag(db: Session, *, dataset: str, name: str, rev: str) -> str:
    """Tag rev with name; returns the tagged commit id. Tags never move."""
    ds = get_dataset(db, dataset)
    check_name("tag", name, REF_NAME)
    if _ref_taken(db, ds, name):
        raise AlreadyExists(f"'{name}' already names a branch or tag in dataset '{dataset}'")
    commit = resolve_rev(db, ds, rev)
    db.add(Tag(dataset_id=ds.id, name=name, commit_pk=commit.pk))
    db.flush()
    return commit.id


def _ref_taken(db: Session, ds: Dataset, name: str) -> bool:
    branch = db.scalar(select(Branch.id).where(Branch.dataset_id == ds.id, Branch.name == name))
    tag = db.scalar(select(Tag.id).where(Tag.dataset_id == ds.id, Tag.name == name))
    return branch is not None or tag is not None


def log(db: Session, *, dataset: str, rev: str | None, limit: int | None = None) -> list[CommitRead]:
    """Commits reachable from rev (default: the default branch), newest first."""
    ds = get_dataset(db, dataset)
    tip = resolve_rev(db, ds, rev or ds.default_branch)
    reachable = CommitGraph.load(db, ds.id).ancestors(tip.pk)
    commits = db.scalars(select(Commit).where(Commit.dataset_id == ds.id).order_by(Commit.generation.desc(), Commit.pk.desc()))
    result = [commit_read(c) for c in commits if c.pk in reachable]
    return result[:limit] if limit else result


def blame(db: Session, *, dataset: str, key: str, rev: str | None) -> list[BlameEntry]:
    """Every commit reachable from rev that changed the example `key`, oldest first."""
    ds = get_dataset(db, dataset)
    tip = resolve_rev(db, ds, rev or ds.default_branch)
    reachable = CommitGraph.load(db, ds.id).ancestors(tip.pk)
    rows = db.execute(
        select(Commit, Change)
        .join(Change, Change.commit_pk == Commit.pk)
        .where(Change.dataset_id == ds.id, Change.key == key)
        .order_by(Commit.generation, Commit.pk)
    ).all()
    entries = [
        BlameEntry(
            commit=c.id, author=c.author, created_at=c.created_at, message=c.message, removed=ch.removed, label=ch.label, input=ch.input
        )
        for c, ch in rows
        if c.pk in reachable
    ]
    if not entries:
        raise NotFound(f"example '{key}' was never changed in the history of '{rev or ds.default_branch}' of dataset '{dataset}'")
    return entries
