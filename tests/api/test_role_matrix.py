"""Who may call what, as a table: every write and every read of a dataset, for each kind of caller.

Callers: the admin; an engineer; a labeler assigned to the dataset `pets`; an outsider (a labeler
assigned to `birds` only); and no token at all. An allowed write must leave exactly one audit
entry naming its caller and action; a refused call, or a read, leaves none.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tests.api.factories import register_model
from tests.api.test_roles import assert_problem, csv_files, seed

CALLERS = ("admin", "engineer", "labeler", "outsider", "anonymous")
USERS = {"admin": "root", "engineer": "eve", "labeler": "lee", "outsider": "lou", "anonymous": None}  # caller -> user
ENGINEERS = ("admin", "engineer")
READERS = ("admin", "engineer", "labeler")  # of pets; also its editors on an unprotected branch
ADMIN = ("admin",)
LABELS = ["cat", "dog"]


@dataclass
class World:
    """The seeded server: an admin client, each caller's token, and what the cases point at."""

    admin: object
    tokens: dict[str, str | None]  # caller -> token (None: no token)
    run: int = 0  # a finished run of pets, with model pets@1
    first: str = ""  # the first commit of pets
    blob: str = ""  # the input of pets/k1
    api: object = None  # the server, for cases that act as the caller

    def example(self, key: str, branch: str = "work") -> dict:
        """An example of pets as an editor loads it (with its `version`)."""
        r = self.admin.get(f"/datasets/pets/examples/{key}", params={"rev": branch})
        assert r.status_code == 200, r.text
        return r.json()

    def edit(self, key: str, branch: str = "work") -> dict:
        """The body of an edit that flips key's label, with the version it was loaded at."""
        seen = self.example(key, branch)
        return {"label": "dog" if seen["label"] == "cat" else "cat", "version": seen["version"]}

    def call(self, method: str, path: str, **kwargs) -> dict:
        """A request the admin makes to set a case up; must succeed. Returns its JSON body ({} when none)."""
        r = self.admin.request(method, path, **kwargs)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else {}

    def stage(self, key: str) -> None:
        """Stage a label flip of key on branch work, as the admin."""
        self.call("PUT", f"/datasets/pets/edits/{key}", params={"branch": "work"}, json=self.edit(key))

    def stage_as(self, key: str, who: str) -> None:
        """Stage a label flip of key on branch work as who when who may (else as the admin)."""
        if who not in READERS:
            return self.stage(key)
        with self.api.client(self.tokens[who]) as c:
            r = c.put(f"/datasets/pets/edits/{key}", params={"branch": "work"}, json=self.edit(key))
            assert r.status_code == 200, r.text

    def queued_run(self) -> int:
        """A new queued run of pets (no worker takes it)."""
        return self.call("POST", "/datasets/pets/runs", json={})["id"]


Prepare = Callable[[World, str], dict]  # (world, caller) -> path fields, and request kwargs under json/files/params


@dataclass
class Case:
    method: str
    path: str  # formatted with {who} (the caller) and the fields prepare returns
    allowed: tuple[str, ...]
    status: int = 200  # the answer to an allowed caller
    audit: tuple[str, str] | None = None  # (action, target) an allowed write records; target formatted like path
    prepare: Prepare = field(default=lambda w, who: {})  # runs as the admin before each call
    refused: int = 403  # the answer to a signed-in caller who may not

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def body(json: dict) -> Prepare:
    """A fixed JSON body, its strings formatted with {who}."""
    return lambda w, who: {"json": {k: v.format(who=who) if isinstance(v, str) else v for k, v in json.items()}}


def staged(key: str, then: Prepare = lambda w, who: {}) -> Prepare:
    """Stage a label flip of key on branch work first."""

    def prepare(w: World, who: str) -> dict:
        w.stage(key)
        return then(w, who)

    return prepare


def staged_by_caller(key: str) -> Prepare:
    """Stage a label flip of key on branch work as the caller (who may then drop their own edit)."""

    def prepare(w: World, who: str) -> dict:
        w.stage_as(key, who)
        return {}

    return prepare


def after(method: str, path: str, **kwargs) -> Prepare:
    """Make one admin request first (e.g. set the watch that the case removes)."""

    def prepare(w: World, who: str) -> dict:
        w.call(method, path, **kwargs)
        return {}

    return prepare


def branch_ahead(w: World, who: str) -> str:
    """A new branch of pets with one commit main lacks (made by the admin); its name."""
    name = f"mr-{who}-{len(w.call('GET', '/datasets/pets/branches', params={'limit': 1000})['items'])}"
    w.call("POST", "/datasets/pets/branches", json={"name": name})
    w.call("PUT", "/datasets/pets/edits/k4", params={"branch": name}, json=w.edit("k4", name))
    w.call("POST", "/datasets/pets/commits", json={"branch": name, "message": "ahead"})
    return name


def merge_request(then: Prepare = lambda w, who: {}) -> Prepare:
    """An open merge request into main from a branch ahead of it, opened by the admin: its number as {n}."""

    def prepare(w: World, who: str) -> dict:
        opened = w.call("POST", "/datasets/pets/merge-requests", json={"source": branch_ahead(w, who), "title": "ahead"})
        return {"n": opened["number"], **then(w, who)}

    return prepare


WRITES = [
    Case(
        "POST",
        "/datasets",
        ENGINEERS,
        201,
        ("dataset.create", "new-{who}"),
        body({"name": "new-{who}", "modality": "text", "labels": LABELS}),
    ),
    Case(
        "POST",
        "/datasets/pets/imports",
        ENGINEERS,
        202,
        ("dataset.import", "pets/default"),
        lambda w, who: {"files": csv_files([[f"new-{who}", "cat", "an imported cat"]])},
    ),
    Case("POST", "/datasets/pets/branches", ENGINEERS, 201, ("branch.create", "pets/b-{who}"), body({"name": "b-{who}"})),
    Case("PATCH", "/datasets/pets/branches/locked", ENGINEERS, 200, ("branch.unprotect", "pets/locked"), body({"protected": False})),
    Case("PATCH", "/datasets/pets/branches/locked", ENGINEERS, 200, ("branch.protect", "pets/locked"), body({"protected": True})),
    Case("PATCH", "/datasets/pets/branches/main", ENGINEERS, 422, None, body({"protected": False})),  # the default: always
    Case("POST", "/datasets/pets/tags", ENGINEERS, 201, ("tag.create", "pets/t-{who}"), body({"name": "t-{who}", "rev": "main"})),
    Case("POST", "/datasets/pets/merges", ENGINEERS, 200, ("branch.merge", "pets/main"), body({"source": "work", "into": "main"})),
    Case("PUT", "/datasets/pets/edits/k3?branch=work", READERS, 200, ("edits.stage", "pets/work"), lambda w, who: {"json": w.edit("k3")}),
    Case(
        "POST",
        "/datasets/pets/edits?branch=work",
        READERS,
        200,
        ("edits.stage", "pets/work"),
        lambda w, who: {"json": {"edits": [{"key": "k4", **w.edit("k4")}]}},
    ),
    Case("DELETE", "/datasets/pets/edits/k2?branch=work", READERS, 200, ("edits.unstage", "pets/work"), staged_by_caller("k2")),
    # someone else's staged edit (the admin's): only engineers may drop it
    Case("DELETE", "/datasets/pets/edits/k2?branch=work", ENGINEERS, 200, ("edits.unstage", "pets/work"), staged("k2")),
    Case("DELETE", "/datasets/pets/edits?branch=work", READERS, 200, ("edits.unstage", "pets/work"), staged("k2")),
    Case(
        "POST",
        "/datasets/pets/commits",
        READERS,
        201,
        ("edits.commit", "pets/work"),
        staged("k1", body({"branch": "work", "message": "k1 flipped by {who}"})),
    ),
    # The default branch and a protected one change only by merge or import: even an admin may not edit them.
    Case("PUT", "/datasets/pets/edits/k1?branch=main", (), prepare=lambda w, who: {"json": w.edit("k1", "main")}),
    Case("PUT", "/datasets/pets/edits/k1?branch=locked", (), prepare=lambda w, who: {"json": w.edit("k1", "locked")}),
    Case("DELETE", "/datasets/pets/edits?branch=locked", ()),
    Case("POST", "/datasets/pets/commits", (), prepare=body({"branch": "main", "message": "sneak"})),
    Case("POST", "/datasets/pets/runs", ENGINEERS, 201, ("run.submit", "pets"), body({})),
    Case("POST", "/runs/{run}/cancel", ENGINEERS, 200, ("run.cancel", "{run}"), lambda w, who: {"run": w.queued_run()}),
    Case(
        "POST",
        "/runs/{run}/retry",
        ENGINEERS,
        201,
        ("run.retry", "{run}"),
        lambda w, who: {"run": w.call("POST", f"/runs/{w.queued_run()}/cancel")["id"]},
    ),
    Case(
        "POST",
        "/datasets/pets/merge-requests",
        READERS,
        201,
        ("merge_request.open", "pets"),
        lambda w, who: {"json": {"source": branch_ahead(w, who), "title": f"from {who}"}},
    ),
    Case(
        "POST",
        "/datasets/pets/merge-requests/{n}/comments",
        READERS,
        201,
        ("merge_request.comment", "pets!{n}"),
        merge_request(body({"body": "hi"})),
    ),
    Case("POST", "/datasets/pets/merge-requests/{n}/approve", ENGINEERS, 200, ("merge_request.approve", "pets!{n}"), merge_request()),
    Case("POST", "/datasets/pets/merge-requests/{n}/close", ENGINEERS, 200, ("merge_request.close", "pets!{n}"), merge_request()),
    Case("PUT", "/datasets/pets/watches/work", ENGINEERS, 200, ("watch.set", "pets/work"), body({})),
    Case(
        "DELETE",
        "/datasets/pets/watches/work",
        ENGINEERS,
        204,
        ("watch.unset", "pets/work"),
        after("PUT", "/datasets/pets/watches/work", json={}),
    ),
    Case("POST", "/datasets/pets/eval-pins", ENGINEERS, 200, ("eval.pin", "pets/pin-{who}"), body({"name": "pin-{who}", "rev": "main"})),
    Case("POST", "/models/pets@1/promote", ENGINEERS, 200, ("model.promote", "pets@1"), body({"stage": "staging"})),
    Case("POST", "/models/pets@latest/promote", ENGINEERS, 200, ("model.promote", "pets@2"), body({"stage": "production"})),
    Case("POST", "/users", ADMIN, 201, ("user.create", "u-{who}"), body({"name": "u-{who}", "role": "labeler"})),
    Case("PATCH", "/users/kit", ADMIN, 200, ("user.update", "kit"), body({"disabled": False})),
    Case("POST", "/users/kit/tokens", ADMIN, 201, ("token.issue", "kit"), body({"label": "from {who}"})),
    # Someone else's token is "not one of yours" (404): its existence is not given away.
    Case(
        "DELETE",
        "/tokens/{token}",
        ADMIN,
        200,
        ("token.revoke", "{token}"),
        lambda w, who: {"token": w.call("POST", "/users/kit/tokens", json={})["id"]},
        refused=404,
    ),
    Case("PUT", "/datasets/birds/members/kit", ADMIN, 200, ("member.add", "birds/kit")),
    Case("DELETE", "/datasets/birds/members/kit", ADMIN, 200, ("member.remove", "birds/kit"), after("PUT", "/datasets/birds/members/kit")),
    Case("POST", "/fsck", ADMIN, 200),  # a check, not a write: nothing to audit
]

READS = [
    Case("GET", "/datasets/pets", READERS),
    Case("GET", "/datasets/pets/examples", READERS),
    Case("GET", "/datasets/pets/examples/k1?rev=work", READERS),
    Case("GET", "/datasets/pets/media/{blob}", READERS, prepare=lambda w, who: {"blob": w.blob}),
    Case("GET", "/datasets/pets/commits", READERS),
    Case("GET", "/datasets/pets/commits/main", READERS),
    Case("GET", "/datasets/pets/branches", READERS),
    Case("GET", "/datasets/pets/tags", READERS),
    Case("GET", "/datasets/pets/diff?a={first}&b=main", READERS, prepare=lambda w, who: {"first": w.first}),
    Case("GET", "/datasets/pets/blame/k1", READERS),
    Case("GET", "/datasets/pets/edits?branch=work", READERS),
    Case("GET", "/datasets/pets/export?rev=main", READERS),
    Case("GET", "/datasets/pets/models", READERS),
    Case("GET", "/models/pets@1", READERS),
    Case("GET", "/models/pets@latest", READERS),
    Case("GET", "/compare?a=pets@1&b=pets@2", READERS),
    Case("GET", "/compare?a=pets@1&b=birds@1", ENGINEERS, 404),  # both sides are checked (birds has no model)
    Case("GET", "/runs?dataset=pets", READERS),
    Case("GET", "/datasets/pets/merge-requests", READERS),
    Case("GET", "/datasets/pets/label-counts", READERS),
    Case("GET", "/runs/{run}", READERS, prepare=lambda w, who: {"run": w.run}),
    Case("GET", "/runs/{run}/events", READERS, prepare=lambda w, who: {"run": w.run}),  # a finished run: the stream ends
    Case("GET", "/runs", ENGINEERS),  # every dataset's runs
    Case("GET", "/users", ADMIN),
    Case("GET", "/audit", ADMIN),
]


@pytest.fixture
def world(api, blobs):
    """pets (main, work, protected locked; models pets@1 and pets@2) and birds; one user per kind of caller, and kit."""
    with api.admin as admin:
        seed(admin, "pets", branches=("work", "locked"))
        seed(admin, "birds")
        assert admin.patch("/datasets/pets/branches/locked", json={"protected": True}).status_code == 200
        tokens = {
            "admin": api.admin_token,
            "engineer": api.add_user("eve", "engineer"),
            "anonymous": None,
            "labeler": api.add_user("lee", "labeler", ("pets",)),
            "outsider": api.add_user("lou", "labeler", ("birds",)),
        }
        api.add_user("kit", "engineer")
        w = World(admin=admin, tokens=tokens, api=api)
        truth = {k: w.example(k, "main")["label"] for k in ("k1", "k2", "k3", "k4")}
        runs = [w.queued_run(), w.queued_run()]
        assert register_model(blobs, runs[0], LABELS, truth, truth) == "pets@1"
        wrong_k2 = {**truth, "k2": "cat" if truth["k2"] == "dog" else "dog"}
        assert register_model(blobs, runs[1], LABELS, truth, wrong_k2) == "pets@2"
        w.run, w.blob = runs[0], w.example("k1", "main")["input"]
        w.first = admin.get("/datasets/pets/commits").json()["items"][-1]["id"]
        yield w


def newest_audit_id(admin) -> int:
    """The id of the latest audit entry (0: none yet)."""
    items = admin.get("/audit", params={"limit": 1}).json()["items"]
    return items[0]["id"] if items else 0


def check(api, w: World, case: Case, caller: str) -> None:
    """Call case as caller; assert the answer, and the audit entries it left (one for an allowed write, else none)."""
    prepared = case.prepare(w, caller)
    kwargs = {k: prepared.pop(k) for k in ("json", "files", "params") if k in prepared}
    fields = {"who": caller, **prepared}
    before = newest_audit_id(w.admin)
    with api.client(w.tokens[caller]) as c:
        r = c.request(case.method, case.path.format(**fields), **kwargs)
    if caller == "anonymous":
        assert_problem(r, 401)
    elif caller not in case.allowed:
        assert_problem(r, case.refused)
    else:
        assert r.status_code == case.status, f"{caller}: {case}: {r.status_code} {r.text}"
    left = [(e["actor"], e["action"], e["target"]) for e in w.admin.get("/audit", params={"limit": 10}).json()["items"] if e["id"] > before]
    if caller in case.allowed and case.audit:
        action, target = case.audit
        assert left == [(USERS[caller], action, target.format(**fields))], f"{caller}: {case}"
    else:
        assert left == [], f"{caller}: {case} left {left}"


def test_each_write_allows_exactly_its_roles_and_is_audited(api, world, subtests):
    """Every write endpoint: allowed callers succeed and are audited under their name; others get 403 (no token: 401)."""
    for case in WRITES:
        for caller in CALLERS:
            with subtests.test(msg=f"{caller} {case}"):
                check(api, world, case, caller)


def test_each_dataset_read_allows_its_readers_only(api, world, subtests):
    """A labeler reads only assigned datasets: models, compare, diff, blame, tags, edits, runs and their events too."""
    for case in READS:
        for caller in CALLERS:
            with subtests.test(msg=f"{caller} {case}"):
                check(api, world, case, caller)
