"""The `s2` CLI against a remote server (--server URL --token T): same commands, same output, HTTP only."""

import json
from pathlib import Path

import pytest

from tests.conftest import CLI
from tests.factories import write_digits_folder, write_image_csv

DIGITS = [str(d) for d in range(10)]
SPEC = {"epochs": 6, "image_size": 16, "image_channels": 1, "batch_size": 32, "learning_rate": 0.003}


class Remote(CLI):
    """A CLI whose S2_* settings are only its own (the test process's are not merged in)."""

    def run(self, *args, input=None):
        import subprocess

        from tests.conftest import S2_BIN

        return subprocess.run(
            [str(S2_BIN), *map(str, args)], env=self.env, cwd=self.cwd, input=input, capture_output=True, text=True, timeout=300
        )


def remote(s2env: dict[str, str], tmp_path: Path, api, token: str) -> "Remote":
    """The CLI with no usable local store at all: whatever works went over HTTP."""
    env = {
        **s2env,
        "S2_HOME": str(tmp_path / "client-home"),
        "S2_DATABASE_URL": "postgresql+psycopg2://nobody@127.0.0.1:1/none",
        "S2_SERVER": api.url,
        "S2_TOKEN": token,
    }
    return Remote(env, tmp_path)


def test_the_versioning_commands_work_remotely_with_the_same_output(api, s2env, tmp_path):
    """import, branch, label, status, commit, merge, log, diff, blame, show, export, tag over HTTP only."""
    eng = remote(s2env, tmp_path, api, api.add_user("eve", "engineer"))
    eng.ok("dataset", "create", "digits", "--modality", "image", "--labels", ",".join(DIGITS))
    first = eng.last_line("import", "digits", write_digits_folder(tmp_path / "folder", limit=120))
    assert len(first) == 64
    assert "digits\timage" in eng.ok("dataset", "list")
    eng.ok("branch", "digits", "fix")
    key = "0/d0000.png"
    assert json.loads(eng.ok("show", "digits", key))["label"] == "0"
    eng.ok("label", "digits", key, "6", "--branch", "fix")
    assert "\t6\teve" in eng.ok("status", "digits", "--branch", "fix")
    fixed = eng.last_line("commit", "digits", "-m", "a six, not a zero", "--branch", "fix")
    assert eng.last_line("merge", "digits", "fix", "--into", "main") == fixed
    assert json.loads(eng.ok("diff", "digits", first, "main", "--json")) == {
        "added": [],
        "removed": [],
        "relabeled": [{"key": key, "from": "0", "to": "6"}],
        "modified": [],
    }
    log = json.loads(eng.ok("log", "digits", "--json"))
    assert [c["id"] for c in log[:2]] == [fixed, first] and log[0]["author"] == "eve"
    assert "a six, not a zero" in eng.ok("blame", "digits", key)
    assert eng.run("tag", "digits", "v1", "main", "-q").stdout == f"{fixed}\n"
    exported = eng.run("export", "digits", "v1", tmp_path / "out")  # a new folder: imagefolder
    assert (exported.stdout, exported.stderr) == (
        f"{fixed}\n",
        f"exported 120 examples of {fixed[:12]} to {tmp_path / 'out'} (imagefolder)\n",
    )
    assert len(list((tmp_path / "out").rglob("*.png"))) == 120 and (tmp_path / "out" / "6" / "d0000.png").exists()
    eng.ok("export", "digits", "v1", tmp_path / "rows.jsonl", "-q")
    records = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert len(records) == 120 and all(r["split"] is None for r in records)
    # Scripts: -q leaves the id alone on stdout, --json the whole result, timestamps with their zone.
    quiet = eng.run("dataset", "create", "other", "--modality", "text", "--labels", "a,b", "-q")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "other\n", "")
    eng.ok("label", "digits", "1/d0001.png", "7", "--branch", "fix", "-q")
    made = json.loads(eng.ok("commit", "digits", "-m", "a seven", "--branch", "fix", "--json"))
    assert made["parents"] == [fixed] and made["author"] == "eve" and made["created_at"].endswith("Z")
    # A table travels with the images it names.
    table = write_image_csv(tmp_path / "csvsrc", {"extra/a.png": "1", "extra/b.png": "2"})
    eng.ok("import", "digits", table, "-m", "two more")
    assert json.loads(eng.ok("show", "digits", "extra/b.png"))["label"] == "2"
    # Errors are one line on stderr, as locally.
    assert "no example 'ghost'" in eng.fails("label", "digits", "ghost", "1", "--branch", "fix")
    assert "protected" in eng.fails("label", "digits", key, "1")
    assert "unknown API token" in eng.fails("--token", "s2_wrong", "dataset", "list")


@pytest.mark.slow(minutes=1)
def test_training_and_the_registry_work_remotely(api, s2env, tmp_path, workers):
    """train --wait follows the run over Server-Sent Events; runs, models, compare, promote over HTTP."""
    workers()
    eng = remote(s2env, tmp_path, api, api.add_user("eve", "engineer"))
    eng.ok("dataset", "create", "digits", "--modality", "image", "--labels", ",".join(DIGITS))
    eng.ok("import", "digits", write_digits_folder(tmp_path / "folder", limit=400))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    proc = eng.run("train", "digits", "--spec", spec, "--wait", "--json")
    assert proc.returncode == 0, proc.stderr
    model = json.loads(proc.stdout)
    assert model["id"] == "digits@1" and model["metrics"]["accuracy"] > 0.5
    assert "epoch" in proc.stderr  # live progress reached the terminal
    reused = json.loads(eng.ok("train", "digits", "--spec", spec, "--json"))  # the same build: answered by digits@1
    assert (reused["reused"], reused["model"]) == (True, "digits@1")
    second = json.loads(eng.ok("train", "digits", "--spec", spec, "--wait", "--json", "--force"))
    assert second["id"] == "digits@2"
    tuned = json.loads(eng.ok("train", "digits", "--spec", spec, "--from-model", "digits@1", "--wait", "--json"))
    assert (tuned["id"], tuned["parent_model"], tuned["spec"]["warm_start"]) == ("digits@3", "digits@1", True)
    assert [r["state"] for r in json.loads(eng.ok("runs", "--json"))] == ["succeeded"] * 4
    assert [m["id"] for m in json.loads(eng.ok("models", "digits", "--json"))] == ["digits@3", "digits@2", "digits@1"]
    compared = json.loads(eng.ok("compare", "digits@1", "digits@2", "--json"))
    assert set(compared["metrics"]["accuracy"]) == {"a", "b", "delta"} and compared["data_diff"]["relabeled"] == []
    text = eng.ok("compare", "digits@1", "digits@2").splitlines()  # for people: rounded, every class, the flips cut at 20
    assert text[0].startswith("digits@1 -> digits@2 on eval set 'eval'") and text[1].split() == ["METRIC", "A", "B", "DELTA"]
    assert text[2].split()[0] == "accuracy" and all(len(v.split(".")[-1]) == 4 for v in text[2].split()[1:])
    per_class = text.index("per class:")
    assert [line.split()[0] for line in text[per_class + 2 : per_class + 12]] == DIGITS
    flipped = len(compared["flips"])
    assert (f"  ... and {flipped - 20} more" in "\n".join(text)) == (flipped > 20)
    shown = eng.ok("run", str(second["run"])).splitlines()
    assert shown[0] == f"run {second['run']}: succeeded" and any(line.split()[:2] == ["model", "digits@2"] for line in shown)
    promoted = eng.run("promote", "digits@1", "--stage", "production")
    assert promoted.stdout == "digits@1\n" and "digits@1 is now production" in promoted.stderr
    labeler = Remote({**eng.env, "S2_TOKEN": api.add_user("lou", "labeler", ("digits",))}, tmp_path)
    assert "may not promote" in labeler.fails("promote", "digits@2")
    assert "digits@1" in labeler.ok("models", "digits")


def test_user_administration_works_remotely(api, s2env, tmp_path):
    """An admin adds users, issues and revokes tokens with the same `s2 user` commands."""
    admin = remote(s2env, tmp_path, api, api.admin_token)
    token = admin.last_line("user", "add", "lou", "--role", "labeler")
    assert token.startswith("s2_")
    assert "lou\tlabeler" in admin.ok("user", "list")
    lou = Remote({**admin.env, "S2_TOKEN": token}, tmp_path)
    assert lou.ok("dataset", "list") == ""
    token_id = admin.ok("user", "tokens", "lou").split("\t")[0]
    admin.ok("user", "revoke", token_id)
    assert "revoked" in lou.fails("dataset", "list")
    assert "needs an admin" in Remote({**admin.env, "S2_TOKEN": api.add_user("eve", "engineer")}, tmp_path).fails("user", "list")


def test_the_remaining_commands_work_remotely_and_are_audited(api, s2env, tmp_path):
    """rm, unstage, branch listing, watch, pin-eval, run, cancel, fsck, user token/assign/set and audit over HTTP only."""
    from tests.factories import write_csv

    admin = remote(s2env, tmp_path, api, api.admin_token)
    eng = remote(s2env, tmp_path, api, api.add_user("eve", "engineer"))
    eng.ok("dataset", "create", "pets", "--modality", "text", "--labels", "a,b")
    eng.ok("import", "pets", write_csv(tmp_path / "p.csv", [["k1", "a", "one"], ["k2", "b", "two"], ["k3", "a", "three"]]))
    eng.ok("branch", "pets", "work")
    eng.ok("branch", "pets", "frozen")
    assert "is protected" in eng.run("protect", "pets", "frozen").stderr
    assert "default branch" in eng.fails("protect", "pets", "main", "--off")
    listed = {line.split("\t")[0]: "(protected)" in line for line in eng.ok("branch", "pets").splitlines()}
    assert listed == {"frozen": True, "main": True, "work": False}
    assert "protected" in eng.fails("label", "pets", "k1", "b", "--branch", "frozen")
    eng.ok("rm", "pets", "k1", "--branch", "work")
    eng.ok("label", "pets", "k2", "a", "--branch", "work")
    staged = eng.ok("status", "pets", "--branch", "work")
    assert "k1" in staged and "k2" in staged
    eng.ok("unstage", "pets", "k2", "--branch", "work")
    staged = eng.ok("status", "pets", "--branch", "work")
    assert "k1" in staged and "k2" not in staged
    eng.ok("commit", "pets", "-m", "drop k1", "--branch", "work")
    assert "no example 'k1'" in eng.fails("show", "pets", "k1", "--rev", "work")

    eng.ok("dataset", "watch", "pets", "--branch", "work")
    eng.ok("dataset", "watch", "pets", "--branch", "work", "--off")
    assert "pinned eval set golden" in eng.run("dataset", "pin-eval", "pets", "golden", "--rev", "main", "--all").stderr
    queued = json.loads(eng.ok("train", "pets", "--json"))  # no worker listens: it stays queued
    assert f"run {queued['id']}: queued" in eng.ok("run", str(queued["id"]))
    assert eng.run("cancel", str(queued["id"])).stderr.strip().endswith("cancelled")
    assert json.loads(eng.ok("run", str(queued["id"]), "--json"))["state"] == "cancelled"

    assert "needs an admin" in eng.fails("fsck")
    admin.ok("fsck")
    assert admin.last_line("user", "token", "eve", "--label", "ci").startswith("s2_")
    lou_token = admin.last_line("user", "add", "lou", "--role", "labeler")
    lou = Remote({**admin.env, "S2_TOKEN": lou_token}, tmp_path)
    assert lou.ok("dataset", "list") == ""
    admin.ok("user", "assign", "lou", "pets")
    assert lou.ok("dataset", "list").startswith("pets")
    admin.ok("user", "set", "lou", "--disable")
    assert "disabled" in lou.fails("dataset", "list")

    trail = json.loads(admin.ok("audit", "--json", "--actor", "eve"))
    done = {(e["action"], e["target"]) for e in trail}
    assert {
        ("branch.protect", "pets/frozen"),
        ("edits.stage", "pets/work"),
        ("edits.unstage", "pets/work"),
        ("edits.commit", "pets/work"),
        ("watch.set", "pets/work"),
        ("watch.unset", "pets/work"),
        ("eval.pin", "pets/golden"),
        ("run.submit", "pets"),
        ("run.cancel", str(queued["id"])),
    } <= done
    assert "needs an admin" in eng.fails("audit")


def test_checkout_works_remotely_and_moves_by_what_differs(api, s2env, tmp_path):
    """s2 checkout with --server: pages of examples, then only the diff's examples, over HTTP; the same files as an export."""
    eng = remote(s2env, tmp_path, api, api.add_user("eve", "engineer"))
    eng.ok("dataset", "create", "digits", "--modality", "image", "--labels", ",".join(DIGITS))
    first = eng.last_line("import", "digits", write_digits_folder(tmp_path / "folder", limit=60))
    eng.ok("branch", "digits", "fix")
    for key in ("0/d0000.png", "1/d0001.png"):
        eng.ok("label", "digits", key, "7", "--branch", "fix")
    eng.last_line("commit", "digits", "-m", "sevens", "--branch", "fix")
    fixed = eng.last_line("merge", "digits", "fix", "--into", "main")
    work = tmp_path / "work"
    assert eng.last_line("checkout", "digits", first, work) == first
    out = eng.run("checkout", "digits", "main", work)
    assert out.stdout == f"{fixed}\n" and "0 written, 2 moved" in out.stderr
    eng.ok("export", "digits", "main", tmp_path / "exported", "--format", "imagefolder")

    def tree(folder):
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file() and ".s2" not in p.parts}

    assert tree(work) == tree(tmp_path / "exported") and len(tree(work)) == 60
    assert (work / "7" / "d0000.png").exists()


def test_a_labeler_stages_edits_from_a_terminal_with_the_versions_the_cli_reads(api, s2env, tmp_path):
    """s2 label and s2 rm against a server send each example's current version, which a labeler's edit needs."""
    from tests.factories import write_csv

    eng = remote(s2env, tmp_path, api, api.add_user("eve", "engineer"))
    eng.ok("dataset", "create", "pets", "--modality", "text", "--labels", "a,b")
    eng.ok("import", "pets", write_csv(tmp_path / "p.csv", [[f"k{i:02d}", "a", f"text {i}"] for i in range(15)]))
    eng.ok("branch", "pets", "work")
    lou_token = api.add_user("lou", "labeler", ("pets",))
    with api.client(lou_token) as c:  # the API itself still refuses a labeler's edit without a version
        assert c.post("/datasets/pets/edits", params={"branch": "work"}, json={"edits": [{"key": "k01", "label": "b"}]}).status_code == 428
    lou = Remote({**eng.env, "S2_TOKEN": lou_token}, tmp_path)
    staged = json.loads(lou.ok("label", "pets", "k01", "b", "--branch", "work", "--json"))  # one key: one read of its version
    assert [(s["key"], s["label"], s["author"]) for s in staged] == [("k01", "b", "lou")]
    edits = write_csv(tmp_path / "edits.csv", [[f"k{i:02d}", "b"] for i in range(2, 14)], ("key", "label"))
    proc = lou.run("label", "pets", "--file", edits, "--branch", "work")  # twelve keys: a page of the revision
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr.startswith("staged 12 edit(s)"), proc.stderr
    assert lou.run("rm", "pets", "k14", "--branch", "work", "-q").stdout == ""
    lou.ok("label", "pets", "k01", "a", "--branch", "work")  # a key staged already: its version is the staged edit's
    assert [(s["key"], s["label"], s["remove"]) for s in json.loads(lou.ok("status", "pets", "--branch", "work", "--json"))] == [
        ("k01", "a", False),
        *[(f"k{i:02d}", "b", False) for i in range(2, 14)],
        ("k14", None, True),
    ]
    assert "no example 'ghost'" in lou.fails("label", "pets", "ghost", "b", "--branch", "work")
    ghost = write_csv(tmp_path / "ghost.csv", [*([f"k{i:02d}", "a"] for i in range(2, 13)), ["ghost", "a"]], ("key", "label"))
    assert f"'{ghost}' line 13: no example 'ghost'" in lou.fails("label", "pets", "--file", ghost, "--branch", "work")
    assert "protected" in lou.fails("label", "pets", "k01", "b")  # main changes by merge only
    made = lou.run("commit", "pets", "-m", "relabeled from a terminal", "--branch", "work", "-q")
    assert made.returncode == 0 and len(made.stdout.strip()) == 64 and made.stderr == ""
    assert json.loads(eng.ok("show", "pets", "k02", "--rev", "work"))["label"] == "b"
