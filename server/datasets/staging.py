"""Staged edits (a branch's index) and committing them atomically."""

import hashlib
import json

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.commits import CommitWriter, effective_delta
from server.datasets.datasets import get_dataset
from server.datasets.history import commit_read
from server.datasets.lookup import lookup
from server.datasets.models import Commit, StagedEdit, utcnow
from server.datasets.refs import get_branch
from server.datasets.rows import Row
from server.datasets.schemas import CommitOutcome, StagedRead
from server.errors import Conflict, Forbidden, InvalidInput, NotFound, NothingToCommit


def check_label(labels: list[str], label: str | None, where: str) -> None:
    """Refuse a label outside the dataset's label set, naming where it came from."""
    if label is not None and label not in labels:
        raise InvalidInput(f"{where}: label {label!r} is not in the label set ({', '.join(labels)})")


def example_version(head: Row | None, staged: StagedEdit | None) -> str:
    """An opaque token naming what an editor sees of an example: the head's state and any staged edit.

    It changes when another editor stages the example and when a commit changes it, so an
    edit carrying an old token is refused instead of silently overwriting newer work.
    """
    return _version_token(head, (staged.label, staged.remove, staged.author, staged.version) if staged else None)


def _version_token(head: Row | None, staged: tuple[str | None, bool, str, int] | None) -> str:
    # The staged edit's content is part of the token, not only its counter: the counter starts
    # again at 1 when an edit is unstaged (or committed away) and another is staged, and that
    # must not make an editor's old token match someone else's newer edit.
    seen = json.dumps([None if head is None else [head.input, head.label], None if staged is None else list(staged[:3])])
    return f"{hashlib.sha1(seen.encode()).hexdigest()[:10]}.{staged[3] if staged else 0}"


def stage_edits(
    db: Session,
    blobs: BlobStore,
    *,
    dataset: str,
    branch: str | None,
    edits: list[tuple[str, str | None, bool]],
    author: str,
    expected_versions: dict[str, str] | None = None,
    source: str | dict[str, str] | None = None,
    authors: dict[str, str] | None = None,
) -> list[StagedRead]:
    """Stage (key, label, remove) edits on a branch; every key must exist there, every label be known.

    expected_versions maps a key to the example_version the editor saw; a different current
    version is a Conflict that names the current label, never a silent overwrite. source: where
    the edits came from when suggested (kept with each edit, then with its change in the commit); a dict
    gives each key its own. authors: a key's own author where it is not the stager (a Label Studio annotator).
    """
    ds = get_dataset(db, dataset)
    # Stagers share the branch row (they touch different keys, or collide on the unique key
    # below); a commit takes it exclusively, so no edit lands between its read and its delete.
    br = get_branch(db, ds, branch, lock="share")
    seen: dict[str, int] = {}
    for i, (key, label, remove) in enumerate(edits, 1):
        if key in seen:
            raise InvalidInput(f"edit {i}: key '{key}' is edited twice (first at edit {seen[key]})")
        seen[key] = i
        if not remove:
            check_label(ds.labels, label, f"edit {i} (key '{key}')")
    existing = lookup(db, blobs, br.head_pk, seen)
    missing = [key for key in seen if key not in existing]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise NotFound(f"no example '{missing[0]}'{more} on branch '{br.name}' of dataset '{dataset}'")
    staged = {e.key: e for e in db.scalars(select(StagedEdit).where(StagedEdit.branch_id == br.id, StagedEdit.key.in_(list(seen))))}
    for key, version in (expected_versions or {}).items():
        current = example_version(existing.get(key), staged.get(key))
        if key in seen and current != version:
            edit = staged.get(key)
            now = (edit.label, edit.remove) if edit else (existing[key].label, False)
            by = f"edited by {edit.author}" if edit else "changed by a commit"
            raise Conflict(
                f"example '{key}' was {by} since you loaded it (version {current}, you saw {version}); "
                f"its label is now {'removed' if now[1] else repr(now[0])}",
                extra={"key": key, "version": current, "label": now[0], "removed": now[1], "by": edit.author if edit else None},
            )
    result, fresh = [], []
    stager = author
    for key, label, remove in edits:
        label = None if remove else label
        author = authors.get(key, stager) if authors else stager
        why = source.get(key) if isinstance(source, dict) else source
        edit = staged.get(key)
        if edit is None:
            fresh.append(
                {
                    "branch_id": br.id,
                    "key": key,
                    "remove": remove,
                    "label": label,
                    "author": author,
                    "version": 1,
                    "updated_at": utcnow(),
                    "input": existing[key].input,
                    "source": why,
                }
            )
            version = 1
        else:
            # Conditional on the version we read: a concurrent stager of this key (who shares the
            # branch lock) changes it first, and then this matches no row.
            version = edit.version + 1
            moved = db.execute(
                update(StagedEdit)
                .where(StagedEdit.id == edit.id, StagedEdit.version == edit.version)
                .values(
                    remove=remove,
                    label=label,
                    author=author,
                    version=version,
                    updated_at=utcnow(),
                    input=existing[key].input,
                    source=why,
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            if moved != 1:
                raise _raced(db, br, key, existing[key])
        result.append(
            StagedRead(
                key=key,
                remove=remove,
                label=label,
                author=author,
                version=version,
                example_version=_version_token(existing[key], (label, remove, author, version)),
            )
        )
    try:
        with db.begin_nested():  # a concurrent first edit of the same key: a Conflict, not a 500
            if fresh:
                db.execute(insert(StagedEdit), fresh)
            db.flush()
    except IntegrityError:
        key = next(
            k
            for k in (e["key"] for e in fresh)
            if db.scalar(select(StagedEdit.id).where(StagedEdit.branch_id == br.id, StagedEdit.key == k)) is not None
        )
        raise _raced(db, br, key, existing[key]) from None
    return result


def _raced(db: Session, br, key: str, head: Row) -> Conflict:
    """The Conflict for an edit that lost a race to a concurrent one, naming the winner's label and version."""
    row = db.execute(
        select(StagedEdit.label, StagedEdit.remove, StagedEdit.author, StagedEdit.version).where(
            StagedEdit.branch_id == br.id, StagedEdit.key == key
        )
    ).first()
    if row is None:  # the winner unstaged it (or committed it away)
        return Conflict(f"example '{key}' changed at the same moment on branch '{br.name}'; reload it and edit again", extra={"key": key})
    label, remove, author, version = row
    return Conflict(
        f"example '{key}' was staged by {author} at the same moment on branch '{br.name}'; its label is now "
        f"{'removed' if remove else repr(label)}",
        extra={
            "key": key,
            "version": _version_token(head, (label, remove, author, version)),
            "label": label,
            "removed": remove,
            "by": author,
        },
    )


def list_staged(
    db: Session, *, dataset: str, branch: str | None, blobs: BlobStore | None = None, after: str | None = None, limit: int | None = None
) -> list[StagedRead]:
    """The branch's uncommitted edits by key, after the cursor; with blobs, each with the example_version to send back."""
    br = get_branch(db, get_dataset(db, dataset), branch)
    query = select(StagedEdit).where(StagedEdit.branch_id == br.id).order_by(StagedEdit.key)
    if after is not None:
        query = query.where(StagedEdit.key > after)
    if limit is not None:
        query = query.limit(limit)
    edits = list(db.scalars(query))
    heads = lookup(db, blobs, br.head_pk, [e.key for e in edits]) if blobs is not None and edits else {}
    return [
        StagedRead(
            key=e.key,
            remove=e.remove,
            label=e.label,
            author=e.author,
            version=e.version,
            example_version=example_version(heads[e.key], e) if e.key in heads else None,
        )
        for e in edits
    ]


def unstage(db: Session, *, dataset: str, branch: str | None, keys: list[str] | None, by: str | None = None) -> tuple[int, int]:
    """Drop staged edits (all of them when keys is None); returns (dropped, kept: others' edits left alone).

    With `by` (a labeler), only their own edits may be dropped: naming another's is Forbidden,
    and "all" drops theirs and keeps the rest. Without it (an engineer), anyone's.
    """
    br = get_branch(db, get_dataset(db, dataset), branch, lock=True)
    query = delete(StagedEdit).where(StagedEdit.branch_id == br.id)
    if keys is not None:
        query = query.where(StagedEdit.key.in_(keys))
    kept = 0
    if by is not None:
        others = select(StagedEdit.key, StagedEdit.author).where(StagedEdit.branch_id == br.id, StagedEdit.author != by)
        if keys is not None:
            other = db.execute(others.where(StagedEdit.key.in_(keys)).limit(1)).first()
            if other is not None:
                raise Forbidden(
                    f"the staged edit of '{other[0]}' on branch '{br.name}' is {other[1]}'s: dropping someone else's edit needs an engineer"
                )
        else:
            kept = len(db.execute(others).all())
        query = query.where(StagedEdit.author == by)
    return db.execute(query.execution_options(synchronize_session=False)).rowcount, kept


COMMIT_CHUNK = 1000  # staged edits read, checked and written at a time: a commit's memory is bounded by one chunk


def commit_staged(
    db: Session,
    blobs: BlobStore,
    *,
    dataset: str,
    branch: str | None,
    message: str,
    author: str,
    source_prefix: str | None = None,
    chunk: int = COMMIT_CHUNK,
) -> CommitOutcome:
    """Turn the branch's staged edits into one commit and clear them, in one transaction.

    Each change keeps the author of its edit (the committer is the commit's author). The commit
    is None, with every edit dropped, when every staged edit matches the head already. An edit
    made on an input that an import has since replaced is a conflict: its label was meant for
    what the editor saw. source_prefix: only the edits whose source starts with it (a Label Studio pull
    commits what it staged, not the labelers' edits in progress). The edits stream into the commit in key
    order, `chunk` at a time, so a commit of a million edits holds one chunk in memory, not all of them.
    """
    ds = get_dataset(db, dataset)
    br = get_branch(db, ds, branch, lock=True)
    mine = StagedEdit.branch_id == br.id
    if source_prefix is not None:
        mine = mine & StagedEdit.source.startswith(source_prefix, autoescape=True)
    parent = db.get(Commit, br.head_pk)
    columns = (StagedEdit.key, StagedEdit.label, StagedEdit.remove, StagedEdit.input, StagedEdit.author, StagedEdit.source)
    writer: CommitWriter | None = None
    total, after = 0, None
    while True:
        query = select(*columns).where(mine).order_by(StagedEdit.key).limit(chunk)
        edits = db.execute(query if after is None else query.where(StagedEdit.key > after)).all()  # tuples: no identity map
        if not edits:
            break
        total, after = total + len(edits), edits[-1].key
        before = lookup(db, blobs, parent.pk, [e.key for e in edits])
        _check_still_there(dataset, br.name, edits, before)
        updates = {e.key: None if e.remove else before[e.key]._replace(label=e.label) for e in edits}
        delta = effective_delta(updates, before)
        if not delta:
            continue
        if writer is None:
            writer = CommitWriter(db, dataset=ds, branch=br, parent=parent, message=message, author=author)
        writer.sources = {e.key: e.source for e in edits if e.source and e.key in delta}
        writer.add((e.key, delta[e.key], before[e.key], e.author) for e in edits if e.key in delta)
    if not total:
        raise NothingToCommit(
            f"nothing staged on branch '{br.name}' of dataset '{dataset}' (stage edits with: s2 label {dataset} KEY LABEL)"
        )
    db.execute(delete(StagedEdit).where(mine).execution_options(synchronize_session=False))
    if writer is None:  # edits that change nothing are dropped (kept, they could undo a later change)
        return CommitOutcome(commit=None, dropped=total)
    commit = writer.finish()
    return CommitOutcome(commit=commit_read(db, commit), dropped=total - writer.changes)


def _check_still_there(dataset: str, branch: str, edits: list, before: dict[str, Row]) -> None:
    """An edit whose example is gone, or whose input was replaced after it was staged, is a Conflict."""
    gone = [e.key for e in edits if e.key not in before]
    if gone:
        raise Conflict(
            f"staged example '{gone[0]}' no longer exists on branch '{branch}'; drop the edit with: s2 unstage {dataset} {gone[0]}"
        )
    stale = next((e for e in edits if e.input is not None and e.input != before[e.key].input), None)
    if stale is not None:
        raise Conflict(
            f"the input of example '{stale.key}' was replaced on branch '{branch}' after {stale.author} staged its label "
            f"{'removal' if stale.remove else repr(stale.label)}; look at the new input and stage the edit again "
            f"(drop the old one with: s2 unstage {dataset} {stale.key})",
            extra={"key": stale.key, "by": stale.author},
        )
