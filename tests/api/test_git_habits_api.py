"""git's habits over REST and through the CLI against a server: REV^N and HEAD, suggestions in 404s,
deleting branches, tags and datasets (roles, audit), and the no-worker warning."""

import json
import signal
import subprocess
import time
from urllib.parse import quote

from tests.api.test_cli_remote import remote
from tests.conftest import S2_BIN
from tests.factories import write_csv


def sigint_as_at_a_terminal() -> None:
    """Ctrl-C as a person's shell delivers it: a test suite started in the background (nohup, CI) runs with
    SIGINT ignored, and Python keeps an ignored SIGINT ignored, so the CLI would never see the interrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _merged(eng, tmp_path) -> dict[str, str]:
    eng.ok("dataset", "create", "ds", "--modality", "text", "--labels", "a,b")
    first = eng.last_line("import", "ds", write_csv(tmp_path / "one.csv", [[f"k{i}", "ab"[i % 2], f"text {i}"] for i in range(20)]))
    eng.ok("branch", "ds", "fix")
    eng.ok("label", "ds", "k1", "a", "--branch", "fix")
    side = eng.last_line("commit", "ds", "-m", "k1 is an a", "--branch", "fix")
    main = eng.last_line("import", "ds", write_csv(tmp_path / "two.csv", [["k99", "a", "more"]]))
    merge = eng.last_line("merge", "ds", "fix", "--into", "main")
    return {"first": first, "side": side, "main": main, "merge": merge}


def test_revisions_suggestions_and_deletions_over_rest_and_the_remote_cli(api, s2env, tmp_path):
    eng_token = api.add_user("eve", "engineer")
    eng = remote(s2env, tmp_path, api, eng_token)
    ids = _merged(eng, tmp_path)
    with api.client(eng_token) as c:
        for rev, want in (("HEAD", "merge"), ("HEAD^", "main"), ("HEAD^2", "side"), ("HEAD^2^", "first"), ("main~2", "first")):
            r = c.get(f"/datasets/ds/commits/{quote(rev, safe='')}")
            assert r.status_code == 200 and r.json()["id"] == ids[want], (rev, r.text)
        r = c.get("/datasets/ds/commits/HEAD%5E3")
        assert r.status_code == 404 and "only 2 parents" in r.json()["detail"]
        r = c.get("/datasets/digts")
        assert r.status_code == 404 and "did you mean 'ds'?" not in r.json()["detail"]
        c.post("/datasets", json={"name": "digits", "modality": "text", "labels": ["a", "b"]}).raise_for_status()
        r = c.get("/datasets/digts")
        assert r.status_code == 404 and r.json()["detail"] == "no dataset named 'digts'; did you mean 'digits'?"
        r = c.get("/datasets/ds/edits", params={"branch": "fxi"})
        assert r.status_code == 404 and "did you mean 'fix'?" in r.json()["detail"]
        # Tags and branches: deleted by engineers, with the reason when refused.
        c.post("/datasets/ds/tags", json={"name": "v1", "rev": "HEAD^"}).raise_for_status()
        assert c.delete("/datasets/ds/branches/main").status_code == 422
        r = c.delete("/datasets/ds/tags/v1")
        assert r.status_code == 200 and r.json() == {"name": "v1", "commit": ids["main"]}
        assert "no tag 'v1'" in c.delete("/datasets/ds/tags/v1").json()["detail"]
        r = c.delete("/datasets/ds/branches/fix")
        assert r.status_code == 200 and r.json() == {"name": "fix", "head": ids["side"], "dropped_staged": 0}
        assert c.delete("/datasets/digits").status_code == 403  # deleting a dataset is an admin's
    labeler = api.add_user("lou", "labeler", ("ds",))
    with api.client(labeler) as c:
        assert c.delete("/datasets/ds/tags/v1").status_code == 403
        assert c.delete("/datasets/ds/branches/x").status_code == 403
    # The remote CLI: log REV, tag list with its header, deleting, suggestions.
    assert json.loads(eng.ok("log", "ds", "HEAD^2", "-n", "1", "--json"))[0]["id"] == ids["side"]
    eng.ok("tag", "ds", "v2", "HEAD")
    proc = eng.run("tag", "list", "ds")
    assert proc.returncode == 0 and proc.stderr.split() == ["TAG", "COMMIT"] and proc.stdout == f"v2\t{ids['merge'][:12]}\n"
    assert "deleted tag v2" in eng.run("tag", "delete", "ds", "v2").stderr
    eng.ok("branch", "ds", "work")
    eng.ok("protect", "ds", "work")
    assert "protected" in eng.fails("branch", "delete", "ds", "work")
    assert "did you mean 'work'?" in eng.fails("branch", "delete", "ds", "wrok")
    assert "no dataset named 'digts'; did you mean 'digits'?" in eng.fails("log", "digts")
    assert "need" in eng.fails("dataset", "delete", "digits", "--yes")  # an engineer: refused by the server
    admin = remote(s2env, tmp_path, api, api.admin_token)
    assert "--yes" in admin.fails("dataset", "delete", "ds")
    assert admin.run("dataset", "delete", "ds", "--yes").stderr.startswith("deleted dataset ds: 5 commit(s)")
    assert [d["name"] for d in json.loads(admin.ok("dataset", "list", "--json"))] == ["digits"]
    with api.admin as c:
        audit = {(e["action"], e["target"]) for e in c.get("/audit", params={"limit": 200}).json()["items"]}
    assert {("dataset.delete", "ds"), ("branch.delete", "ds/fix"), ("tag.delete", "ds/v1"), ("tag.delete", "ds/v2")} <= audit


def test_a_run_no_worker_listens_for_is_said_at_once_against_a_server(api, s2env, tmp_path, workers):
    eng = remote(s2env, tmp_path, api, api.add_user("eve", "engineer"))
    eng.ok("dataset", "create", "ds", "--modality", "text", "--labels", "a,b")
    eng.ok("import", "ds", write_csv(tmp_path / "one.csv", [[f"k{i}", "ab"[i % 2], f"text {i}"] for i in range(20)]))
    with api.admin as c:
        assert c.get("/workers", params={"queue": "cpu"}).json() == {"queue": "cpu", "workers": 0, "names": []}
    proc = eng.run("train", "ds")
    assert proc.returncode == 0 and "no worker is listening on queue 'cpu'" in proc.stderr and "s2 worker --queue cpu" in proc.stderr
    waiting = subprocess.Popen(
        [str(S2_BIN), "train", "ds", "--wait"],
        env=eng.env,
        cwd=eng.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_at_a_terminal,
    )
    seen = ""
    while "no worker is listening" not in seen:
        line = waiting.stderr.readline()
        assert line, seen
        seen += line
    time.sleep(0.5)
    waiting.send_signal(signal.SIGINT)
    _, rest = waiting.communicate(timeout=30)
    run_id = json.loads(eng.ok("runs", "--json"))[0]["id"]
    assert waiting.returncode == 130 and f"run {run_id} goes on" in rest and f"s2 cancel {run_id}" in rest
    for r in json.loads(eng.ok("runs", "--json")):
        eng.ok("cancel", str(r["id"]))
    # With a worker listening, nothing is said.
    workers()
    deadline = time.monotonic() + 60
    with api.admin as c:
        while c.get("/workers", params={"queue": "cpu"}).json()["workers"] == 0:
            assert time.monotonic() < deadline, "the worker never said it was alive"
            time.sleep(0.2)
    proc = eng.run("train", "ds")
    assert proc.returncode == 0 and "no worker" not in proc.stderr, proc.stderr
