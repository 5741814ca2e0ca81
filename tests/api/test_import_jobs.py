"""Import jobs over HTTP: listed and followed; a server killed mid-import leaves a failed job and leftovers gc removes."""

import io
import os
import signal
import time
import zipfile
from pathlib import Path

from tests.api.factories import finished, imported
from tests.api.test_uploads import create, upload
from tests.factories import png_bytes


def images_zip(n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(n):
            zf.writestr(f"{'cat' if i % 2 else 'dog'}/{i:05d}.png", png_bytes(i))
    return buf.getvalue()


def test_import_jobs_are_listed_newest_first_and_say_how_they_ended(api, s2env):
    with api.admin as c:
        create(c, "pets")
        good = imported(c, upload(c, "pets", ("pets.zip", images_zip(20))))
        assert (good["examples"], good["changes"], good["rows"], good["phase"]) == (20, 20, 20, None)
        failed = finished(c, upload(c, "pets", ("l.csv", b"key,label,image\nk,horse,x.png\n")))
        assert failed["state"] == "failed" and "horse" in failed["error"] and "line 2" in failed["error"] and failed["commit"] is None
        jobs = c.get("/datasets/pets/imports", params={"limit": 1}).json()
        assert [j["id"] for j in jobs["items"]] == [failed["id"]] and jobs["next_cursor"]
        older = c.get("/datasets/pets/imports", params={"limit": 1, "cursor": jobs["next_cursor"]}).json()
        assert [j["id"] for j in older["items"]] == [good["id"]]
        assert c.get("/imports/99999").status_code == 404
        nameless = upload(c, "pets", ("notes.txt", b"just some notes"))  # refused before a job is made
        assert nameless.status_code == 422, nameless.text
        assert "the upload holds no table" in nameless.json()["detail"] and "/tmp" not in nameless.text and "/home" not in nameless.text
    outsider = api.add_user("lee", "labeler")  # not a member of pets: its jobs are none of lee's business
    with api.client(outsider) as c:
        assert c.get(f"/imports/{good['id']}").status_code == 403
        assert c.get("/datasets/pets/imports").status_code == 403


def test_a_server_killed_mid_import_leaves_a_failed_job_and_an_upload_folder_that_gc_removes(api_factory, s2env):
    settings = {"S2_RUN_STALE_AFTER_S": "3", "S2_WORKER_BEAT_S": "1"}
    first = api_factory(**settings)
    with first.admin as c:
        create(c, "pets")
        r = upload(c, "pets", ("pets.zip", images_zip(3000)))
        assert r.status_code == 202, r.text
        job = r.json()
    first.proc.send_signal(signal.SIGKILL)  # mid-import: the job was queued or reading
    first.proc.wait()
    uploads = Path(s2env["S2_HOME"]) / "uploads"
    left = list(uploads.iterdir())
    assert len(left) == 1  # the upload's folder, which the job would have removed
    an_hour_ago = time.time() - 3600
    os.utime(left[0], (an_hour_ago, an_hour_ago))

    second = api_factory(**settings)  # the same store, another server process
    with second.admin as c:
        deadline = time.monotonic() + 30
        while (state := c.get(f"/imports/{job['id']}").json())["state"] != "failed":
            assert state["state"] in ("queued", "running") and time.monotonic() < deadline, state
            time.sleep(0.2)
        assert "stopped before it finished" in state["error"] and state["commit"] is None
        assert c.get("/datasets/pets/commits/main").json()["rows"] == 0
        report = c.post("/fsck").json()
        assert report["ok"] and [item["kind"] for item in report["leftovers"]] == ["upload"], report
        too_short = c.post("/gc", params={"grace_s": 0})
        assert too_short.status_code == 422 and "grace_s" in too_short.text
        freed = c.post("/gc", params={"grace_s": 60}).json()
        assert freed["folders"] == 1 and not freed["dry_run"]
        assert not uploads.exists() or list(uploads.iterdir()) == []
        assert c.post("/fsck").json()["leftovers"] == []
        assert imported(c, upload(c, "pets", ("pets.zip", images_zip(30))))["changes"] == 30  # the store is whole
        assert c.post("/fsck").json()["ok"]


def test_a_large_import_brings_the_planners_statistics_up_to_date(cli, s2env, tmp_path):
    """Without fresh statistics PostgreSQL planned a diff's key lookups on a just-imported table as full scans."""
    import csv
    import time

    from sqlalchemy import create_engine, text

    source = tmp_path / "rows.csv"
    with open(source, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "label", "text"])
        w.writerows([f"k{i:06d}", "ab"[i % 2], f"text {i}"] for i in range(12_000))
    cli.ok("dataset", "create", "big", "--modality", "text", "--labels", "a,b")
    cli.ok("import", "big", source)
    engine = create_engine(s2env["S2_DATABASE_URL"])
    deadline = time.monotonic() + 10
    with engine.connect() as conn:
        while True:  # the statistics views are flushed within a second or so
            analyzed = conn.execute(text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'changes'")).scalar()
            if analyzed is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
            conn.rollback()
    engine.dispose()
    assert analyzed is not None, "the import did not ANALYZE the changes table"
