"""Consensus labeling: N independent labels per example of a review queue, then the agreed one.

An engineer makes a review queue ask for N labels (`require_votes`). Labelers vote without seeing
each other's votes (a vote answers with counts only). When an example has its N votes, they are
settled: a strict majority is staged on the queue's branch with who chose what as its source
("consensus: ana, bo chose 3; cy chose 5"), and the example leaves the queue; without one, it
moves to the `disputed` review queue with each labeler's choice, where a reviewer's `resolve`
stages the label they pick, again with every choice as its source. Agreement statistics
(Krippendorff's alpha, Fleiss' kappa, pairwise Cohen's kappa, per class and per labeler) come
from trainer.engine.agreement over every vote of the queue.
"""

from collections import defaultdict

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from labeling.models import ReviewItem
from server.blobs import BlobStore
from server.datasets.datasets import get_dataset
from server.datasets.models import Dataset, utcnow
from server.datasets.refs import get_branch
from server.engine.models import ConsensusQueue, Vote
from server.errors import InvalidInput, NotFound

DISPUTED = "disputed"
LABEL_STUDIO = "labelstudio"  # the queue name of disagreements among Label Studio annotators


def require_votes(db: Session, *, dataset: str, queue: str, required: int, branch: str | None, by: str) -> dict:
    """Make a review queue ask for `required` independent labels per example; agreed labels are staged on branch."""
    from labeling.review import check_queue_name

    check_queue_name(queue)
    if queue == DISPUTED:
        raise InvalidInput(f"queue '{DISPUTED}' holds the disagreements of consensus queues: choose another name")
    if not 2 <= required <= 20:
        raise InvalidInput(f"votes {required}: a consensus queue asks for 2 to 20 labels per example")
    ds = get_dataset(db, dataset)
    br = get_branch(db, ds, branch)
    if br.protected:
        raise InvalidInput(f"branch '{br.name}' is protected: agreed labels are staged on a branch labelers may edit")
    row = db.get(ConsensusQueue, (ds.id, queue))
    if row is None:
        row = ConsensusQueue(dataset_id=ds.id, queue=queue, created_by=by, created_at=utcnow())
        db.add(row)
    row.required, row.branch = required, br.name
    db.flush()
    return {"dataset": dataset, "queue": queue, "votes": required, "branch": br.name}


def votes_required(db: Session, *, dataset: str, queue: str) -> int | None:
    """How many labels a queue asks for per example (None: not a consensus queue)."""
    row = db.get(ConsensusQueue, (get_dataset(db, dataset).id, queue))
    return row.required if row is not None else None


def choices_text(votes: dict[str, str]) -> str:
    by_label = defaultdict(list)
    for who, label in sorted(votes.items()):
        by_label[label].append(who)
    return "; ".join(f"{', '.join(who)} chose {label}" for label, who in sorted(by_label.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def cast_vote(db: Session, blobs: BlobStore, *, dataset: str, queue: str, key: str, label: str, labeler: str) -> dict:
    """Record labeler's label for key; with the queue's N votes in, settle it. Answers counts, never others' labels."""
    from server.datasets.staging import stage_edits
    from trainer.engine.agreement import settle

    ds = get_dataset(db, dataset)
    rule = db.get(ConsensusQueue, (ds.id, queue))
    if rule is None:
        raise NotFound(f"review queue '{queue}' of dataset '{dataset}' does not ask for votes (an engineer sets it: s2 queue consensus)")
    if label not in ds.labels:
        raise InvalidInput(f"label {label!r} is not in the label set ({', '.join(ds.labels)})")
    item = db.scalar(select(ReviewItem).where(ReviewItem.dataset_id == ds.id, ReviewItem.queue == queue, ReviewItem.key == key))
    if item is None:
        raise NotFound(f"example '{key}' is not in the {queue} queue of dataset '{dataset}' (settled already, or never queued)")
    vote = db.get(Vote, (ds.id, queue, key, labeler))
    if vote is None:
        db.add(Vote(dataset_id=ds.id, queue=queue, key=key, labeler=labeler, label=label, voted_at=utcnow()))
    else:
        vote.label, vote.voted_at = label, utcnow()
    db.flush()
    votes = {v.labeler: v.label for v in db.scalars(select(Vote).where(Vote.dataset_id == ds.id, Vote.queue == queue, Vote.key == key))}
    outcome = {"key": key, "votes": len(votes), "required": rule.required, "settled": None}
    if len(votes) < rule.required:
        return outcome
    index = {lab: i for i, lab in enumerate(ds.labels)}
    verdict = settle([(key, who, index[lab]) for who, lab in votes.items()], required=rule.required)[0]
    db.execute(delete(ReviewItem).where(ReviewItem.id == item.id).execution_options(synchronize_session=False))
    if verdict.label is not None:
        agreed = ds.labels[verdict.label]
        source = f"consensus in queue {queue}: {choices_text(votes)}"
        stage_edits(db, blobs, dataset=dataset, branch=rule.branch, edits=[(key, agreed, False)], author=labeler, source=source)
        outcome["settled"] = {"label": agreed, "source": source}
    else:
        dispute(db, ds, key, queue, votes)
        outcome["settled"] = {"label": None, "disputed": True}
    return outcome


def dispute(db: Session, ds: Dataset, key: str, queue: str, votes: dict[str, str], origin: str | None = None) -> None:
    """Queue key in `disputed` with each labeler's choice; origin names where the votes were cast (default: the queue)."""
    row = db.scalar(select(ReviewItem).where(ReviewItem.dataset_id == ds.id, ReviewItem.queue == DISPUTED, ReviewItem.key == key))
    if row is None:
        row = ReviewItem(dataset_id=ds.id, queue=DISPUTED, key=key)
        db.add(row)
    row.score, row.reason, row.added_by, row.added_at = (
        float(len(votes)),
        f"{origin or queue}: {choices_text(votes)}",
        f"consensus {queue}",
        utcnow(),
    )
    row.suggested = row.given = row.input = row.confidence = row.model_id = None
    db.flush()


def resolve_dispute(db: Session, blobs: BlobStore, *, dataset: str, key: str, label: str, by: str, branch: str | None = None) -> dict:
    """A reviewer picks the label of a disputed example: staged with every labeler's choice as its source."""
    from server.datasets.staging import stage_edits

    ds = get_dataset(db, dataset)
    item = db.scalar(select(ReviewItem).where(ReviewItem.dataset_id == ds.id, ReviewItem.queue == DISPUTED, ReviewItem.key == key))
    if item is None:
        raise NotFound(f"example '{key}' is not disputed in dataset '{dataset}'")
    queue = item.added_by.removeprefix("consensus ")
    rule = db.get(ConsensusQueue, (ds.id, queue))
    if rule is None and branch is None and queue == LABEL_STUDIO:
        from labeling.labelstudio.models import LabelStudioLink

        link = db.get(LabelStudioLink, ds.id)  # annotators who disagreed in Label Studio: the linked branch
        branch = link.branch if link is not None else None
    source = f"resolved by {by} from {item.reason}"
    stage_edits(
        db, blobs, dataset=dataset, branch=branch or (rule.branch if rule else None), edits=[(key, label, False)], author=by, source=source
    )
    db.execute(delete(ReviewItem).where(ReviewItem.id == item.id).execution_options(synchronize_session=False))
    return {"key": key, "label": label, "source": source}


def queue_agreement(db: Session, *, dataset: str, queue: str) -> dict:
    """How far the labelers of a consensus queue agree, over every example with two or more votes."""
    from trainer.engine.agreement import agreement

    ds = get_dataset(db, dataset)
    index = {lab: i for i, lab in enumerate(ds.labels)}
    ratings = [
        (v.key, v.labeler, index[v.label])
        for v in db.scalars(select(Vote).where(Vote.dataset_id == ds.id, Vote.queue == queue))
        if v.label in index
    ]
    if not ratings:
        raise NotFound(f"no votes in queue '{queue}' of dataset '{dataset}'")
    stats = agreement(ratings, len(ds.labels))
    return {
        "queue": queue,
        "items": stats.items,
        "krippendorff_alpha": stats.alpha,
        "fleiss_kappa": stats.fleiss_kappa,
        "fleiss_raters": stats.fleiss_raters,
        "cohen_kappa": [{"a": a, "b": b, "kappa": k} for (a, b), k in stats.cohen.items()],
        "per_class": {ds.labels[c]: v for c, v in stats.per_class.items()},
        "per_labeler": stats.per_labeler,
    }
