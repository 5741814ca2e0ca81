"""Pulling from Label Studio: annotations become staged edits on the linked branch, with their provenance, then a commit.

Per task pushed by s2 (its `s2_key` in the task's data):
- skipped and cancelled annotations are ignored; a choice outside the label set is reported with its task id;
- one annotator: their label; several: the data engine's consensus rule (a strict majority is the label, else
  the example goes to the `disputed` review queue with each annotator's choice);
- an example relabeled in s2 since it was pushed (its edit version moved) is a conflict, reported, never overwritten;
- each staged edit names its Label Studio project, task, annotation ids and annotators as its source, and the
  annotator as its author; the pull commits exactly those edits (labelers' edits in progress stay staged);
- a task whose annotations s2 already took (same ids, same update times) is skipped: a second pull changes nothing.
Tasks deleted in Label Studio are simply not seen: nothing in s2 is deleted.
"""

import json
import logging
import threading
import time
from collections import Counter
from contextlib import closing

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from labeling.labelstudio.ahead import ahead
from labeling.labelstudio.bridge import REPORT_MAX, Progress, client_for, get_link, status_of, talking
from labeling.labelstudio.jsonstream import array_items
from labeling.labelstudio.models import LabelStudioTask
from labeling.labelstudio.tasks import KEY_FIELD, Annotation, read_annotation, seen_mark
from server.blobs import BlobStore
from server.datasets.models import StagedEdit, utcnow
from server.datasets.refs import get_branch
from server.datasets.staging import _version_token, commit_staged, example_version, stage_edits
from server.db import run_in_transaction, run_read
from server.engine.consensus import LABEL_STUDIO, choices_text, dispute
from server.errors import NothingToCommit, UpstreamFailed

log = logging.getLogger(__name__)

SOURCE = "Label Studio"  # every source a pull stages starts so: its commit takes those edits only
_locks: dict[str, threading.Lock] = {}  # one pull of a dataset at a time in a process (webhooks arrive together)
_locks_guard = threading.Lock()


def _lock(dataset: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(dataset, threading.Lock())


class Report:
    """What a pull did, in counts, with the first REPORT_MAX conflicts, disagreements and invalid choices."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.lists: dict[str, list] = {"conflicts": [], "disputed": [], "invalid": []}

    def add(self, kind: str, item: dict) -> None:
        self.counts[kind] += 1
        if len(self.lists[kind]) < REPORT_MAX:
            self.lists[kind].append(item)

    def as_dict(self, commit: str | None, project: int) -> dict:
        names = ("tasks", "applied", "agreed", "unchanged", "already_labeled", "skipped", "not_from_s2")
        out = {"project": project, "commit": commit} | {k: self.counts[k] for k in names}
        return out | {k: self.counts[k] for k in self.lists} | {f"{k}_list": v for k, v in self.lists.items()}


def _verdict(valid: list[Annotation], labels: list[str]) -> tuple[str | None, dict[str, str], list[Annotation]]:
    """The label the task's annotators agree on (None: they disagree), each one's latest choice, and whose agree."""
    from trainer.engine.agreement import settle

    latest: dict[str, Annotation] = {}
    for a in sorted(valid, key=lambda a: (a.updated, a.id)):
        latest[a.annotator] = a
    votes = {who: a.choice for who, a in latest.items()}
    if len(votes) == 1:
        return next(iter(votes.values())), votes, list(latest.values())
    index = {label: i for i, label in enumerate(labels)}
    verdict = settle([("task", who, index[c]) for who, c in votes.items()], required=len(votes))[0]
    if verdict.label is None:
        return None, votes, []
    agreed = labels[verdict.label]
    return agreed, votes, [a for a in latest.values() if a.choice == agreed]


def _take_page(db: Session, blobs: BlobStore, dataset: str, tasks: list[dict], emails: dict[int, str], by: str, report: Report) -> None:
    """Stage what one page of annotated tasks says, in one transaction (the report is filled as it goes)."""
    from server.datasets.lookup import lookup

    ds, link = get_link(db, dataset)
    br = get_branch(db, ds, link.branch)
    by_key = {t["data"][KEY_FIELD]: t for t in tasks if isinstance(t.get("data"), dict) and t["data"].get(KEY_FIELD)}
    report.counts["not_from_s2"] += len(tasks) - len(by_key)
    pushed = select(*(getattr(LabelStudioTask, c) for c in ("key", "task", "seen", "version", "state", "note")))
    rows = {r.key: r for r in db.execute(pushed.where(LabelStudioTask.dataset_id == ds.id, LabelStudioTask.key.in_(list(by_key))))}
    report.counts["not_from_s2"] += sum(1 for k, t in by_key.items() if k not in rows or rows[k].task != t["id"])
    heads = lookup(db, blobs, br.head_pk, [k for k in by_key if k in rows])
    staged = {e.key: e for e in db.scalars(select(StagedEdit).where(StagedEdit.branch_id == br.id, StagedEdit.key.in_(list(heads))))}
    edits, sources, authors, expected = [], {}, {}, {}
    marks: dict[str, dict] = {}  # key -> the bookkeeping columns this page changes, written in one UPDATE at the end
    for key, task in by_key.items():
        row = rows.get(key)
        if row is None or row.task != task["id"] or key not in heads:
            continue
        anns = [read_annotation(a, emails) for a in task.get("annotations") or []]
        if not anns:
            continue  # not annotated (yet, or any more): nothing to take
        report.counts["tasks"] += 1
        mark = seen_mark(anns)
        if row.seen == mark:
            report.counts["unchanged"] += 1
            continue
        marks[key] = m = {"seen": mark}
        report.counts["skipped"] += sum(1 for a in anns if a.cancelled)
        valid = [a for a in anns if not a.cancelled and a.choice is not None]
        bad = [a for a in valid if a.choice not in ds.labels]
        for a in bad:
            report.add("invalid", {"task": task["id"], "annotation": a.id, "key": key, "choice": a.choice, "annotator": a.annotator})
        valid = [a for a in valid if a.choice in ds.labels]
        if bad and not valid:
            m.update(state="invalid", note=f"choice {bad[0].choice!r} of annotation {bad[0].id} is not a label of '{dataset}'")
            continue
        if not valid:
            continue
        label, votes, agreeing = _verdict(valid, ds.labels)
        where = f"{SOURCE} project {link.project}, task {task['id']}"
        if label is None:
            dispute(db, ds, key, LABEL_STUDIO, votes, origin=where)
            m.update(state="disputed", note=choices_text(votes))
            report.add("disputed", {"key": key, "task": task["id"], "choices": votes})
            continue
        head, edit = heads[key], staged.get(key)
        current = example_version(head, edit)
        now_label = (None if edit.remove else edit.label) if edit else head.label
        if current != row.version:
            if now_label == label:
                m.update(state="applied", note=None, version=current)
                report.counts["already_labeled"] += 1
                continue
            m.update(
                state="conflict",
                note=f"relabeled in s2 as {now_label!r} since it was pushed; Label Studio says {label!r} ({choices_text(votes)})",
            )
            report.add("conflicts", {"key": key, "task": task["id"], "s2": now_label, "labelstudio": label, "choices": votes})
            continue
        if now_label == label:
            m.update(state="applied", note=None)
            report.counts["already_labeled"] += 1
            continue
        ids = ", ".join(str(a.id) for a in agreeing)
        if len(votes) == 1:
            sources[key] = f"{where}, annotation {ids} by {agreeing[0].annotator}"
        else:
            sources[key] = f"{where}, annotations {ids}: {choices_text(votes)}"
        authors[key] = ", ".join(a.annotator for a in agreeing)[:256]
        expected[key] = current
        edits.append((key, label, False))
        m.update(state="agreed" if len(votes) > 1 else "applied", note=None)
        m["version"] = _version_token(head._replace(label=label), None)  # what the example is once committed
        report.counts["agreed" if len(votes) > 1 else "applied"] += 1
    _write_marks(db, ds.id, rows, marks)
    if edits:
        stage_edits(
            db, blobs, dataset=dataset, branch=br.name, edits=edits, author=by, expected_versions=expected, source=sources, authors=authors
        )


_MARKS_SQL = {  # the page's bookkeeping from one JSON parameter: [{key, seen, state, note, version}, ...]
    "postgresql": """
        UPDATE ls_tasks SET seen = v.seen, state = v.state, note = v.note, version = v.version, synced_at = :now
        FROM json_to_recordset(CAST(:rows AS json)) AS v(key text, seen text, state text, note text, version text)
        WHERE ls_tasks.dataset_id = :dataset AND ls_tasks.key = v.key COLLATE "C"
    """,
    "sqlite": """
        UPDATE ls_tasks SET seen = json_extract(v.value, '$.seen'), state = json_extract(v.value, '$.state'),
            note = json_extract(v.value, '$.note'), version = json_extract(v.value, '$.version'), synced_at = :now
        FROM json_each(:rows) AS v
        WHERE ls_tasks.dataset_id = :dataset AND ls_tasks.key = json_extract(v.value, '$.key')
    """,
}


def _write_marks(db: Session, dataset_id: int, rows: dict, marks: dict[str, dict]) -> None:
    """The page's bookkeeping in one UPDATE with the rows as one JSON parameter.

    Not a statement per task (a round trip each), and not a CASE per column either: SQLAlchemy building and
    compiling ~1,000 bound parameters a page cost more than the rest of the page's staging.
    """
    if not marks:
        return
    full = [
        {"key": key, "seen": rows[key].seen, "state": rows[key].state, "note": rows[key].note, "version": rows[key].version} | m
        for key, m in marks.items()
    ]
    sql = _MARKS_SQL[db.get_bind().dialect.name]
    now = bindparam("now", type_=LabelStudioTask.__table__.c.synced_at.type)  # stored as the column stores it
    db.execute(text(sql).bindparams(now), {"rows": json.dumps(full), "now": utcnow(), "dataset": dataset_id})


# What s2 reads of an export: annotations and the task's data; predictions (s2's own pre-annotations) and drafts as ids
_LEAN = {"predictions": {"only_id": True}, "drafts": {"only_id": True}}
EXPORT_POLL_S, EXPORT_WAIT_S = 0.25, 1800.0  # a snapshot export runs in Label Studio's background queue where it has one


def annotated_pages(client, link, batch: int):  # noqa: ANN001, ANN201
    """The project's annotated tasks, `batch` at a time, read from one snapshot export as it streams in.

    A snapshot export (made, waited for, downloaded, then deleted) rather than the plain export: it can leave out the
    predictions and drafts, which the plain one serializes for every task; for 10,000 tasks that cut Label
    Studio's time by a quarter (14 s against 19 s). One request for all tasks, as Label Studio's own export: pages of
    task ids cost it ~25% more in all. The body is parsed item by item (jsonstream), so s2 holds a page of tasks,
    not the export. Tasks made in Label Studio by hand come too; they are counted as not from s2 and left alone.
    """
    what = f"the JSON export of project {link.project}"
    exports = client.projects.exports
    with talking(link.url, f"export the annotated tasks of project {link.project}"):
        made = exports.create(
            link.project, title="s2 pull", serialization_options=_LEAN, task_filter_options={"only_with_annotations": True}
        )
    try:
        deadline = time.monotonic() + EXPORT_WAIT_S
        with talking(link.url, f"wait for export {made.id} of project {link.project}"):
            status = made.status
            while status not in ("completed", "failed"):
                if time.monotonic() > deadline:
                    raise UpstreamFailed(f"Label Studio at {link.url} did not finish {what} in {EXPORT_WAIT_S:.0f} s")
                time.sleep(EXPORT_POLL_S)
                status = exports.get(link.project, made.id).status
        if status == "failed":
            raise UpstreamFailed(f"Label Studio at {link.url} failed to make {what} (export {made.id})")
        page: list[dict] = []
        with talking(link.url, f"download export {made.id} of project {link.project}"):
            chunks = exports.download(link.project, made.id, export_type="JSON", request_options={"chunk_size": 256 * 1024})
            try:
                for task in array_items(chunks, what):
                    page.append(task if isinstance(task, dict) else {})
                    if len(page) >= batch:
                        yield page
                        page = []
            except ValueError as exc:
                raise UpstreamFailed(f"Label Studio at {link.url} sent {what} in a form s2 cannot read: {exc}") from None
        if page:
            yield page
    finally:
        try:  # the snapshot is Label Studio's file, of no use once read: failing to drop it loses nothing of s2's
            exports.delete(link.project, made.id)
        except Exception as exc:  # whatever the SDK raises: the pull's own outcome stands
            log.warning("could not delete export %s of project %s at %s: %s", made.id, link.project, link.url, exc)


def pull(
    blobs: BlobStore, *, dataset: str, by: str, task_ids: list[int] | None = None, batch: int, progress: Progress | None = None
) -> dict:
    """Take the linked project's annotations (all annotated tasks, or the tasks named) and commit them on the branch."""
    with _lock(dataset):
        link = run_read(lambda db: get_link(db, dataset)[1])
        client = client_for(link.url, link.token)
        with talking(link.url, "list users"):
            emails = {u.id: u.email for u in client.users.list()}
        report = Report()
        done = 0

        def pages():  # noqa: ANN202
            if task_ids is not None:
                for tid in task_ids:
                    with talking(link.url, f"read task {tid}"):
                        yield [client.tasks.get(id=str(tid)).model_dump(mode="json")]
                return
            yield from annotated_pages(client, link, batch)

        with closing(ahead(pages(), name="s2-ls-pull")) as fetched:  # page k+1 comes from Label Studio while page k is staged
            for tasks in fetched:
                if not tasks:
                    continue
                run_in_transaction(lambda db, tasks=tasks: _take_page(db, blobs, dataset, tasks, emails, by, report))
                done += len(tasks)
                if progress:
                    progress(done, None)

        def finish(db: Session) -> dict:
            ds, link = get_link(db, dataset)
            commit = None
            staged = report.counts["applied"] + report.counts["agreed"]
            if staged or db.scalar(
                select(StagedEdit.id)
                .where(StagedEdit.branch_id == get_branch(db, ds, link.branch).id, StagedEdit.source.startswith(SOURCE, autoescape=True))
                .limit(1)
            ):
                try:
                    outcome = commit_staged(
                        db,
                        blobs,
                        dataset=dataset,
                        branch=link.branch,
                        message=f"Label Studio: {staged} label(s) from project {link.project} ({link.title})",
                        author=by,
                        source_prefix=SOURCE,
                    )
                    commit = outcome.commit.id if outcome.commit else None
                except NothingToCommit:
                    pass
            out = report.as_dict(commit, link.project)
            link.last_pull_at, link.last_pull = utcnow(), {k: v for k, v in out.items() if not k.endswith("_list")}
            return out | {"status": status_of(db, ds, link)}

        return run_in_transaction(finish)
