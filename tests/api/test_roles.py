"""Who may do what over HTTP: authentication failures, and each role's allowed and forbidden actions."""

import csv
import io

from tests.api.factories import imported

PROBLEM = "application/problem+json"
# k1's text is long enough to be stored as a blob (served as media); the others are short and sit inline.
ROWS = [["k1", "cat", "a purring cat. " * 300], ["k2", "dog", "a barking dog"], ["k3", "cat", "a sleeping cat"], ["k4", "dog", "a wet dog"]]


def csv_files(rows: list[list[str]], name: str = "data.csv") -> dict:
    """A text dataset CSV as the multipart `files` field of an import."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["key", "label", "text"])
    writer.writerows(rows)
    return {"files": (name, buf.getvalue().encode(), "text/csv")}


def assert_problem(r, status: int) -> dict:
    """r is a problem+json answer with status and the RFC 9457 fields; returns its body."""
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body = r.json()
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == status and body["detail"]
    return body


def version(c, name: str, key: str, branch: str) -> str:
    """The `version` of an example on branch as an editor loads it; every staged edit sends it back."""
    r = c.get(f"/datasets/{name}/examples/{key}", params={"rev": branch})
    assert r.status_code == 200, r.text
    return r.json()["version"]


def seed(c, name: str = "pets", branches: tuple[str, ...] = ()) -> None:
    """A text dataset with four examples on main, and branches from main (as the caller, an engineer or admin)."""
    assert c.post("/datasets", json={"name": name, "modality": "text", "labels": ["cat", "dog"]}).status_code == 201
    assert imported(c, c.post(f"/datasets/{name}/imports", files=csv_files(ROWS)))["changes"] == 4
    for b in branches:
        assert c.post(f"/datasets/{name}/branches", json={"name": b}).status_code == 201


def test_requests_without_a_valid_token_are_401_problems(api):
    """No token, an unknown, revoked or disabled user's token: 401 problem+json with a Bearer challenge; secrets never listed."""
    with api.client() as anon:
        for method, path in [("GET", "/me"), ("GET", "/datasets"), ("POST", "/datasets"), ("GET", "/users")]:
            body = assert_problem(anon.request(method, path), 401)
            assert body["type"].endswith("/unauthorized")
        r = anon.get("/datasets")
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert_problem(anon.get("/me", headers={"Authorization": "Basic cm9vdDpyb290"}), 401)
    with api.client("s2_not-a-token-we-gave-out") as c:
        assert "unknown" in assert_problem(c.get("/me"), 401)["detail"]

    ann = api.add_user("ann", "engineer")
    with api.client(ann) as c:
        assert c.get("/me").json()["name"] == "ann"
    with api.admin as admin:
        second = admin.post("/users/ann/tokens", json={"label": "laptop"})
        assert second.status_code == 201 and second.json()["token"].startswith("s2_")
        listed = admin.get("/users/ann/tokens")
        assert listed.status_code == 200 and len(listed.json()["items"]) == 2
        assert all("token" not in t for t in listed.json()["items"])
        assert ann not in listed.text and second.json()["token"] not in listed.text
        first_id = listed.json()["items"][0]["id"]
        revoked = admin.delete(f"/tokens/{first_id}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    with api.client(ann) as c:
        assert "revoked" in assert_problem(c.get("/me"), 401)["detail"]
    with api.client(second.json()["token"]) as c:
        assert c.get("/me").status_code == 200  # revoking one token leaves the others working

    bob = api.add_user("bob", "labeler")
    with api.admin as admin:
        assert admin.patch("/users/bob", json={"disabled": True}).json()["disabled"] is True
    with api.client(bob) as c:
        assert "disabled" in assert_problem(c.get("/me"), 401)["detail"]
    with api.admin as admin:
        assert admin.patch("/users/bob", json={"disabled": False}).status_code == 200
    with api.client(bob) as c:
        assert c.get("/me").status_code == 200


def test_admin_manages_users_tokens_assignments_audit_and_fsck(api):
    """An admin adds and changes users, issues and revokes tokens, assigns datasets, reads the audit and runs fsck."""
    with api.admin as admin:
        seed(admin, "pets")
        seed(admin, "birds")
        r = admin.post("/users", json={"name": "lee", "role": "labeler", "datasets": ["pets"]})
        assert r.status_code == 201, r.text
        assert r.json()["user"]["datasets"] == ["pets"] and r.json()["token"]["token"].startswith("s2_")
        assert_problem(admin.post("/users", json={"name": "lee", "role": "labeler"}), 409)
        assert_problem(admin.post("/users", json={"name": "x", "role": "superuser"}), 422)
        assert [u["name"] for u in admin.get("/users").json()["items"]] == ["lee", "root"]
        assert admin.get("/users/lee").json()["role"] == "labeler"
        assert admin.patch("/users/lee", json={"role": "engineer"}).json()["role"] == "engineer"
        assert admin.patch("/users/lee", json={"role": "labeler"}).json()["role"] == "labeler"
        issued = admin.post("/users/lee/tokens", json={"label": "tablet"})
        assert issued.status_code == 201 and issued.json()["label"] == "tablet"
        assert admin.delete(f"/tokens/{issued.json()['id']}").json()["revoked_at"] is not None
        assert admin.put("/datasets/birds/members/lee").json()["datasets"] == ["birds", "pets"]
        assert admin.delete("/datasets/birds/members/lee").json()["datasets"] == ["pets"]
        assert_problem(admin.put("/datasets/birds/members/nobody"), 404)
        assert_problem(admin.put("/datasets/nothing/members/lee"), 404)
        fsck = admin.post("/fsck")
        assert fsck.status_code == 200 and fsck.json()["ok"] is True

        events = admin.get("/audit").json()["items"]
        done = [(e["actor"], e["action"], e["target"]) for e in events]
        for expected in [
            ("root", "user.create", "lee"),
            ("root", "user.update", "lee"),
            ("root", "token.issue", "lee"),
            ("root", "token.revoke", str(issued.json()["id"])),
            ("root", "member.add", "birds/lee"),
            ("root", "member.remove", "birds/lee"),
            ("root", "dataset.create", "pets"),
        ]:
            assert expected in done, (expected, done)
        assert not any(a == "user.create" and t == "x" for _, a, t in done)  # a refused write leaves no trace

    lee = api.add_user("lee2", "labeler")
    with api.client(lee) as c:
        assert c.get("/users/lee2").status_code == 200  # their own record
        assert_problem(c.get("/users/root"), 403)
        assert_problem(c.get("/users/root/tokens"), 403)
        own = c.post("/users/lee2/tokens", json={})
        assert own.status_code == 201
        assert c.delete(f"/tokens/{own.json()['id']}").status_code == 200  # owners revoke their own tokens
        assert_problem(c.delete(f"/tokens/{issued.json()['id']}"), 404)  # but not someone else's


def test_engineer_builds_datasets_and_trains_but_does_not_administer(api):
    """An engineer creates, imports, branches, tags, protects, merges and trains; every write is audited under their name."""
    eve = api.add_user("eve", "engineer")
    with api.client(eve) as c:
        seed(c, "pets", branches=("fix",))
        tag = c.post("/datasets/pets/tags", json={"name": "v1", "rev": "main"})
        assert tag.status_code == 201 and tag.json()["name"] == "v1"
        assert c.patch("/datasets/pets/branches/fix", json={"protected": True}).json()["protected"] is True
        assert c.patch("/datasets/pets/branches/fix", json={"protected": False}).json()["protected"] is False
        main_k1 = {"label": "dog", "version": version(c, "pets", "k1", "main")}
        assert_problem(c.put("/datasets/pets/edits/k1", json=main_k1), 403)  # main is protected for everyone
        fix_k1 = {"label": "dog", "version": version(c, "pets", "k1", "fix")}
        assert c.put("/datasets/pets/edits/k1?branch=fix", json=fix_k1).status_code == 200
        made = c.post("/datasets/pets/commits", json={"branch": "fix", "message": "k1 is a dog"})
        assert made.status_code == 201 and made.json()["commit"]["author"] == "eve"
        merged = c.post("/datasets/pets/merges", json={"source": "fix", "into": "main"})
        assert merged.status_code == 200 and merged.json()["outcome"] == "fast-forward"
        run = c.post("/datasets/pets/runs", json={})
        assert run.status_code == 201, run.text
        assert run.json()["state"] == "queued" and run.json()["requested_by"] == "eve"
        assert "spec" in assert_problem(c.post("/datasets/pets/runs", json={"spec": {"epochs": "many"}}), 422)["detail"]
        assert_problem(c.post("/models/pets@1/promote", json={}), 404)  # no such model: not a permission problem

        for method, path, body in [
            ("GET", "/users", None),
            ("POST", "/users", {"name": "z", "role": "admin"}),
            ("PATCH", "/users/eve", {"role": "admin"}),
            ("GET", "/audit", None),
            ("POST", "/fsck", None),
            ("PUT", "/datasets/pets/members/eve", None),
            ("GET", "/users/root/tokens", None),
        ]:
            assert_problem(c.request(method, path, json=body), 403)
        assert c.get("/me").json()["role"] == "engineer"

        authors = {commit["author"] for commit in c.get("/datasets/pets/commits?rev=main").json()["items"]}
        assert authors == {"eve"}, authors

    with api.admin as admin:
        done = {(e["action"], e["target"]) for e in admin.get("/audit?actor=eve").json()["items"]}
    for expected in [
        ("dataset.create", "pets"),
        ("dataset.import", "pets/default"),
        ("branch.create", "pets/fix"),
        ("tag.create", "pets/v1"),
        ("branch.protect", "pets/fix"),
        ("branch.unprotect", "pets/fix"),
        ("edits.stage", "pets/fix"),
        ("edits.commit", "pets/fix"),
        ("branch.merge", "pets/main"),
        ("run.submit", "pets"),
    ]:
        assert expected in done, (expected, done)
    assert not any(action.startswith("user.") for action, _ in done)


def test_labeler_reads_assigned_datasets_and_edits_only_unprotected_branches(api):
    """A labeler sees only assigned datasets, edits and commits on open branches, and is refused everything else."""
    with api.admin as admin:
        seed(admin, "pets", branches=("work", "locked"))
        seed(admin, "secret", branches=("work",))
        secret_k1 = {"label": "dog", "version": version(admin, "secret", "k1", "work")}
    eng = api.add_user("eve", "engineer")
    with api.client(eng) as c:
        assert c.patch("/datasets/pets/branches/locked", json={"protected": True}).json()["protected"] is True
    lee = api.add_user("lee", "labeler", ("pets",))
    with api.client(lee) as c:
        assert [d["name"] for d in c.get("/datasets").json()["items"]] == ["pets"]
        assert c.get("/datasets/pets").status_code == 200
        assert len(c.get("/datasets/pets/examples").json()["items"]) == 4
        assert c.get("/runs?dataset=pets").status_code == 200
        for path in [
            "/datasets/secret",
            "/datasets/secret/examples",
            "/datasets/secret/commits",
            "/datasets/secret/branches",
            "/runs?dataset=secret",
            "/runs",
            "/datasets/secret/export?rev=main",
        ]:
            assert_problem(c.get(path), 403)
        assert_problem(c.put("/datasets/secret/edits/k1?branch=work", json=secret_k1), 403)

        staged = c.put("/datasets/pets/edits/k1?branch=work", json={"label": "dog", "version": version(c, "pets", "k1", "work")})
        assert staged.status_code == 200 and staged.json()["author"] == "lee"
        made = c.post("/datasets/pets/commits", json={"branch": "work", "message": "k1 barks"})
        assert made.status_code == 201 and made.json()["commit"]["author"] == "lee"
        assert c.get("/datasets/pets/commits?rev=work").json()["items"][0]["author"] == "lee"
        assert c.get("/datasets/pets/examples/k1?rev=work").json()["label"] == "dog"

        for branch in ("main", "locked"):
            k2 = {"label": "cat", "version": version(c, "pets", "k2", branch)}
            assert "protected" in assert_problem(c.put(f"/datasets/pets/edits/k2?branch={branch}", json=k2), 403)["detail"]
            assert_problem(c.post("/datasets/pets/edits", params={"branch": branch}, json={"edits": [{"key": "k2", **k2}]}), 403)
            assert_problem(c.post("/datasets/pets/commits", json={"branch": branch, "message": "sneak"}), 403)
            assert_problem(c.delete(f"/datasets/pets/edits?branch={branch}"), 403)
        k2 = {"label": "cat", "version": version(c, "pets", "k2", "main")}
        assert_problem(c.put("/datasets/pets/edits/k2", json=k2), 403)  # no branch: the default, main

        forbidden = [
            ("POST", "/datasets/pets/merges", {"json": {"source": "work", "into": "main"}}),
            ("POST", "/datasets", {"json": {"name": "mine", "modality": "text", "labels": ["a", "b"]}}),
            ("POST", "/datasets/pets/branches", {"json": {"name": "mine"}}),
            ("POST", "/datasets/pets/tags", {"json": {"name": "t", "rev": "main"}}),
            ("PATCH", "/datasets/pets/branches/locked", {"json": {"protected": False}}),
            ("POST", "/datasets/pets/imports", {"files": csv_files([["k9", "cat", "new"]])}),
            ("POST", "/datasets/pets/runs", {"json": {}}),
            ("POST", "/models/pets@1/promote", {"json": {}}),
            ("PUT", "/datasets/pets/watches/work", {"json": {}}),
            ("GET", "/users", {}),
            ("GET", "/audit", {}),
            ("POST", "/fsck", {}),
        ]
        for method, path, kwargs in forbidden:
            assert_problem(c.request(method, path, **kwargs), 403)

    with api.admin as admin:
        main = admin.get("/datasets/pets/commits?rev=main").json()["items"]
        assert len(main) == 2 and admin.get("/datasets/pets/examples/k2").json()["label"] == "dog"  # nothing leaked
        assert [b["name"] for b in admin.get("/datasets/pets/branches").json()["items"]] == ["locked", "main", "work"]
        done = [(e["action"], e["target"]) for e in admin.get("/audit?actor=lee").json()["items"]]
        assert done == [("edits.commit", "pets/work"), ("edits.stage", "pets/work")], done
        assert admin.delete("/datasets/pets/members/lee").status_code == 200
    with api.client(lee) as c:
        assert_problem(c.get("/datasets/pets"), 403)  # unassigning takes effect on the next request
        assert c.get("/datasets").json()["items"] == []


def test_run_ids_reveal_nothing_to_a_labeler(api):
    """A labeler gets the same 403 for another dataset's run as for a run that does not exist; an engineer sees the 404."""
    with api.admin as admin:
        seed(admin, "pets")
        seed(admin, "secret")
        run = admin.post("/datasets/secret/runs", json={})
        assert run.status_code == 201, run.text
    lee = api.add_user("lee", "labeler", ("pets",))
    with api.client(lee) as c:
        theirs = assert_problem(c.get(f"/runs/{run.json()['id']}"), 403)["detail"]
        missing = assert_problem(c.get("/runs/999999"), 403)["detail"]
        assert "assigned datasets only" in theirs and "assigned datasets only" in missing
    with api.client(api.add_user("eve", "engineer")) as c:
        assert "999999" in assert_problem(c.get("/runs/999999"), 404)["detail"]
