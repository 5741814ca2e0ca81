"""The Label Studio pull's per-task bookkeeping: one UPDATE per page, on both stores, touching only the tasks named."""

from datetime import datetime

from sqlalchemy import select

from labeling.labelstudio.models import LabelStudioTask
from labeling.labelstudio.pull import _write_marks
from server.datasets.datasets import get_dataset
from server.db import run_in_transaction, run_read
from tests.factories import make_dataset

KEYS = ["plain", 'it\'s "quoted"', "naïve/ü-ß", "other"]


def test_a_pages_marks_land_in_one_statement_and_leave_other_tasks_alone(blobs):
    make_dataset()

    def pushed(db):
        ds = get_dataset(db, "ds")
        db.add_all(LabelStudioTask(dataset_id=ds.id, key=k, task=i, version="v0", state="pushed", note="old") for i, k in enumerate(KEYS))
        return ds.id

    dataset_id = run_in_transaction(pushed)

    def write(db):
        columns = select(*(getattr(LabelStudioTask, c) for c in ("key", "task", "seen", "version", "state", "note")))
        rows = {r.key: r for r in db.execute(columns.where(LabelStudioTask.dataset_id == dataset_id))}
        marks = {
            KEYS[0]: {"seen": "1@t1", "state": "applied", "note": None, "version": "v1"},
            KEYS[1]: {"seen": "2@t2", "state": "conflict", "note": "relabeled in s2 as 'a'"},  # version kept
            KEYS[2]: {"seen": "3@t3"},  # only seen: the rest as it was
        }
        _write_marks(db, dataset_id, rows, marks)

    run_in_transaction(write)
    got = {t.key: t for t in run_read(lambda db: list(db.scalars(select(LabelStudioTask).where(LabelStudioTask.dataset_id == dataset_id))))}
    assert (got[KEYS[0]].seen, got[KEYS[0]].state, got[KEYS[0]].note, got[KEYS[0]].version) == ("1@t1", "applied", None, "v1")
    assert (got[KEYS[1]].seen, got[KEYS[1]].state, got[KEYS[1]].note, got[KEYS[1]].version) == (
        "2@t2",
        "conflict",
        "relabeled in s2 as 'a'",
        "v0",
    )
    assert (got[KEYS[2]].seen, got[KEYS[2]].state, got[KEYS[2]].note, got[KEYS[2]].version) == ("3@t3", "pushed", "old", "v0")
    assert all(isinstance(got[k].synced_at, datetime) and got[k].synced_at.tzinfo is not None for k in KEYS[:3])
    untouched = got["other"]
    assert (untouched.seen, untouched.state, untouched.note, untouched.synced_at) == (None, "pushed", "old", None)


def test_a_batchs_task_ids_are_recorded_in_one_statement(blobs):
    from labeling.labelstudio.bridge import record_task_ids

    make_dataset()

    def sending(db):
        ds = get_dataset(db, "ds")
        db.add_all(LabelStudioTask(dataset_id=ds.id, key=k, version="v0", state="sending") for k in KEYS)
        return ds.id

    dataset_id = run_in_transaction(sending)
    run_in_transaction(lambda db: record_task_ids(db, dataset_id, {KEYS[0]: 7, KEYS[1]: 8, KEYS[2]: 9}))
    got = run_read(lambda db: {t.key: (t.task, t.state) for t in db.scalars(select(LabelStudioTask))})
    assert got == {KEYS[0]: (7, "pushed"), KEYS[1]: (8, "pushed"), KEYS[2]: (9, "pushed"), "other": (None, "sending")}
