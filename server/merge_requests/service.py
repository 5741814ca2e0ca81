"""Merge requests: open, discuss, resolve conflicts key by key, approve, merge or close.

A request names two branches of one dataset; what it would do is computed from them when asked
(the engine's merge plan: O(changes since the branches parted)), so it follows both branches as
they move. Its check is the newest model of the source's head against the production model. The
merge itself is the engine's merge with the request's resolutions, and the target's rules hold
(the routes let only engineers merge; a protected target changes only that way).
"""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.blobs import BlobStore
from server.datasets.datasets import get_dataset
from server.datasets.graph import commits_since_base, merge_bases
from server.datasets.merge import merge, plan_merge
from server.datasets.models import Commit, Dataset, utcnow
from server.datasets.refs import get_branch
from server.errors import Conflict, InvalidInput, NotFound
from server.merge_requests.models import MergeRequest, MergeRequestComment, MergeRequestResolution
from server.merge_requests.schemas import CheckRead, CommentRead, ConflictRead, MergeRequestDetail, MergeRequestRead

CONFLICTS_SHOWN = 500  # a request lists this many conflicts; the count says how many there are


def request_read(ds: Dataset, mr: MergeRequest) -> MergeRequestRead:
    return MergeRequestRead(
        id=f"{ds.name}!{mr.number}",
        dataset=ds.name,
        number=mr.number,
        title=mr.title,
        description=mr.description,
        source=mr.source,
        target=mr.target,
        author=mr.author,
        state=mr.state,
        approved_by=list(mr.approved_by or []),
        merged_by=mr.merged_by,
        merge_commit=mr.merge_commit,
        created_at=mr.created_at,
        updated_at=mr.updated_at,
    )


def get_request(db: Session, *, dataset: str, number: int, lock: bool = False) -> tuple[Dataset, MergeRequest]:
    ds = get_dataset(db, dataset)
    query = select(MergeRequest).where(MergeRequest.dataset_id == ds.id, MergeRequest.number == number)
    mr = db.scalar(query.with_for_update() if lock else query)
    if mr is None:
        raise NotFound(f"no merge request !{number} in dataset '{dataset}' (list them with: s2 mr list {dataset})")
    return ds, mr


def open_request(
    db: Session, blobs: BlobStore, *, dataset: str, source: str, target: str | None, title: str, description: str, author: str
) -> MergeRequestRead:
    """A new request from branch source into branch target; refused when there is nothing to merge."""
    ds = get_dataset(db, dataset)
    target = target or ds.default_branch
    if source == target:
        raise InvalidInput(f"a merge request needs two branches: '{source}' would merge into itself")
    src, dst = get_branch(db, ds, source), get_branch(db, ds, target)
    plan = plan_merge(db, blobs, ds, db.get(Commit, dst.head_pk), db.get(Commit, src.head_pk))
    if plan.how == "up-to-date":
        raise InvalidInput(f"nothing to merge: '{target}' already holds every commit of '{source}'")
    already = db.scalar(
        select(MergeRequest.number).where(
            MergeRequest.dataset_id == ds.id, MergeRequest.source == source, MergeRequest.target == target, MergeRequest.state == "open"
        )
    )
    if already is not None:
        raise Conflict(f"merge request !{already} already asks to merge '{source}' into '{target}'")
    db.execute(select(Dataset.id).where(Dataset.id == ds.id).with_for_update())  # numbers are handed out one at a time
    number = (db.scalar(select(func.max(MergeRequest.number)).where(MergeRequest.dataset_id == ds.id)) or 0) + 1
    mr = MergeRequest(
        dataset_id=ds.id,
        number=number,
        title=title.strip(),
        description=description,
        source=source,
        target=target,
        author=author,
        state="open",
        approved_by=[],
    )
    db.add(mr)
    db.flush()
    return request_read(ds, mr)


def list_requests(
    db: Session, *, dataset: str, state: str | None = None, before: int | None = None, limit: int = 50
) -> list[MergeRequestRead]:
    """A dataset's requests, newest first (numbers below `before`, in `state` when given)."""
    ds = get_dataset(db, dataset)
    query = select(MergeRequest).where(MergeRequest.dataset_id == ds.id).order_by(MergeRequest.number.desc()).limit(limit)
    if state is not None:
        query = query.where(MergeRequest.state == state)
    if before is not None:
        query = query.where(MergeRequest.number < before)
    return [request_read(ds, mr) for mr in db.scalars(query)]


def _label(row) -> tuple[str | None, bool]:
    return (None, True) if row is None else (row.label, False)


def _check(db: Session, ds: Dataset, head: Commit) -> CheckRead:
    from server.registry.builds import builds_of
    from server.registry.service import model_read
    from server.runs.models import ModelVersion

    build = builds_of(db, ds.id, ds.name, [head.id])[head.id]
    production = db.scalar(
        select(ModelVersion)
        .where(ModelVersion.dataset_id == ds.id, ModelVersion.stage == "production")
        .order_by(ModelVersion.version.desc())
    )
    prod = model_read(db, production, ds.name) if production is not None else None
    metrics = {}
    for name in ("accuracy", "macro_f1", "loss"):
        a = prod.metrics.get(name) if prod else None
        b = build.model.metrics.get(name) if build.model else None
        metrics[name] = {"production": a, "model": b, "delta": None if a is None or b is None else round(b - a, 6)}
    slices = []
    if build.model is not None:
        from server.engine.slices import slices_of_models

        slices = slices_of_models(db, dataset=ds.name, versions=[build.model.version]).get(build.model.version, [])
    return CheckRead(
        source_head=head.id,
        model=build.model.id if build.model else None,
        run=build.run_id,
        run_state=build.run_state,
        production=prod.id if prod else None,
        metrics=metrics,
        slices=slices,
    )


def request_detail(db: Session, blobs: BlobStore, *, dataset: str, number: int) -> MergeRequestDetail:
    """One request with what merging it would do now, its check and its discussion."""
    ds, mr = get_request(db, dataset=dataset, number=number)
    comments = [
        CommentRead(author=c.author, body=c.body, created_at=c.created_at)
        for c in db.scalars(select(MergeRequestComment).where(MergeRequestComment.request_id == mr.id).order_by(MergeRequestComment.id))
    ]
    base = request_read(ds, mr).model_dump()
    if mr.state != "open":
        return MergeRequestDetail(
            **base,
            ahead=0,
            behind=0,
            base=None,
            source_head=None,
            target_head=mr.merge_commit,
            mergeable=mr.state,
            conflicts=[],
            conflicts_left=0,
            check=None,
            comments=comments,
        )
    src, dst = get_branch(db, ds, mr.source), get_branch(db, ds, mr.target)
    theirs, ours = db.get(Commit, src.head_pk), db.get(Commit, dst.head_pk)
    bases = merge_bases(db, ours, theirs)
    ahead, behind = (len(s) for s in commits_since_base(db, theirs, ours, bases))
    plan = plan_merge(db, blobs, ds, ours, theirs)
    chosen = {r.key: r for r in db.scalars(select(MergeRequestResolution).where(MergeRequestResolution.request_id == mr.id))}
    conflicts = []
    for c in plan.conflicts:
        (bl, br), (ol, orm), (tl, tr) = _label(c.base), _label(c.ours), _label(c.theirs)
        r = chosen.get(c.key)
        conflicts.append(
            ConflictRead(
                key=c.key,
                base_label=bl,
                base_removed=br,
                target_label=ol,
                target_removed=orm,
                source_label=tl,
                source_removed=tr,
                take=r.take if r else None,
                taken_by=r.by if r else None,
            )
        )
    left = sum(1 for c in conflicts if c.take is None)
    mergeable = {"up-to-date": "up-to-date", "fast-forward": "fast-forward"}.get(plan.how) or (
        "conflicts" if left else ("resolved" if conflicts else "clean")
    )
    return MergeRequestDetail(
        **base,
        ahead=ahead,
        behind=behind,
        base=db.get(Commit, bases[0]).id if bases else None,
        source_head=theirs.id,
        target_head=ours.id,
        mergeable=mergeable,
        conflicts=conflicts[:CONFLICTS_SHOWN],
        conflicts_left=left,
        check=_check(db, ds, theirs),
        comments=comments,
    )


def request_check(db: Session, *, dataset: str, number: int) -> CheckRead | None:
    """The check of an open request alone (its page polls it while a watched branch trains); None once it is not open."""
    ds, mr = get_request(db, dataset=dataset, number=number)
    if mr.state != "open":
        return None
    return _check(db, ds, db.get(Commit, get_branch(db, ds, mr.source).head_pk))


def _open(mr: MergeRequest, ds: Dataset, what: str) -> None:
    if mr.state != "open":
        raise Conflict(f"merge request {ds.name}!{mr.number} is {mr.state}: it cannot {what}")


def add_comment(db: Session, *, dataset: str, number: int, author: str, body: str) -> CommentRead:
    _, mr = get_request(db, dataset=dataset, number=number)
    comment = MergeRequestComment(request_id=mr.id, author=author, body=body)
    db.add(comment)
    mr.updated_at = utcnow()
    db.flush()
    return CommentRead(author=comment.author, body=comment.body, created_at=comment.created_at)


def approve(db: Session, *, dataset: str, number: int, by: str) -> MergeRequestRead:
    ds, mr = get_request(db, dataset=dataset, number=number, lock=True)
    _open(mr, ds, "be approved")
    if by not in (mr.approved_by or []):
        mr.approved_by = [*(mr.approved_by or []), by]
        mr.updated_at = utcnow()
    db.flush()
    return request_read(ds, mr)


def resolve(db: Session, blobs: BlobStore, *, dataset: str, number: int, key: str, take: str, by: str) -> ConflictRead:
    """Choose the side of one conflicting key; refused for a key that is not in conflict now."""
    ds, mr = get_request(db, dataset=dataset, number=number, lock=True)
    _open(mr, ds, "be resolved")
    src, dst = get_branch(db, ds, mr.source), get_branch(db, ds, mr.target)
    plan = plan_merge(db, blobs, ds, db.get(Commit, dst.head_pk), db.get(Commit, src.head_pk))
    conflict = next((c for c in plan.conflicts if c.key == key), None)
    if conflict is None:
        raise InvalidInput(f"example '{key}' is not in conflict in {ds.name}!{number}: only conflicting keys are resolved")
    found = db.scalar(select(MergeRequestResolution).where(MergeRequestResolution.request_id == mr.id, MergeRequestResolution.key == key))
    if found is None:
        found = MergeRequestResolution(request_id=mr.id, key=key, take=take, by=by)
        db.add(found)
    found.take, found.by, found.at = take, by, utcnow()
    mr.updated_at = utcnow()
    db.flush()
    (bl, br), (ol, orm), (tl, tr) = _label(conflict.base), _label(conflict.ours), _label(conflict.theirs)
    return ConflictRead(
        key=key,
        base_label=bl,
        base_removed=br,
        target_label=ol,
        target_removed=orm,
        source_label=tl,
        source_removed=tr,
        take=take,
        taken_by=by,
    )


def merge_request(db: Session, blobs: BlobStore, *, dataset: str, number: int, by: str) -> MergeRequestRead:
    """Merge it now, with its resolutions: re-checked against both heads as they are (a moved target may conflict anew)."""
    ds, mr = get_request(db, dataset=dataset, number=number, lock=True)
    _open(mr, ds, "be merged")
    take = {r.key: r.take for r in db.scalars(select(MergeRequestResolution).where(MergeRequestResolution.request_id == mr.id))}
    how, head = merge(
        db,
        blobs,
        dataset=dataset,
        source=mr.source,
        into=mr.target,
        author=by,
        message=f"merge {ds.name}!{mr.number}: {mr.title}",
        take=take,
    )
    if how == "up-to-date":
        raise Conflict(f"nothing to merge: '{mr.target}' already holds every commit of '{mr.source}'; close {ds.name}!{mr.number}")
    mr.state, mr.merged_by, mr.merge_commit, mr.updated_at = "merged", by, head.id, utcnow()
    db.flush()
    return request_read(ds, mr)


def close_request(db: Session, *, dataset: str, number: int) -> MergeRequestRead:
    ds, mr = get_request(db, dataset=dataset, number=number, lock=True)
    _open(mr, ds, "be closed")
    mr.state, mr.updated_at = "closed", utcnow()
    db.flush()
    return request_read(ds, mr)
