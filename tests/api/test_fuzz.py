"""Schemathesis fuzzes every operation of the running server's own OpenAPI schema: no 5xx, every answer as documented."""

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from tests.api.factories import imported, register_model
from tests.factories import write_topics_csv

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZER = "fuzz-admin-q7"  # a name the generator will not stumble on: it must not disable or demote itself
# Not fuzzed: the event stream of a queued run never ends while no worker runs (the loop test follows it live).
EXCLUDED = {("GET", "/api/v1/runs/{run_id}/events")}
MODES = ((GenerationMode.POSITIVE, 40), (GenerationMode.NEGATIVE, 20))  # examples per operation


def stage(c, key: str, label: str) -> None:
    """Stage an edit on branch dev of topics, sending the version the editor loaded."""
    seen = c.get(f"/datasets/topics/examples/{key}", params={"rev": "dev"}).json()
    r = c.put(f"/datasets/topics/edits/{key}", params={"branch": "dev"}, json={"label": label, "version": seen["version"]})
    assert r.status_code == 200, r.text


def seed(api, tmp_path, blobs) -> dict[str, object]:
    """Real data for generated requests to hit: a text dataset with history, a branch, staged edits, a model, a queued run."""
    with api.admin as c:
        r = c.post("/datasets", json={"name": "topics", "modality": "text", "labels": ["sport", "food", "tech"]})
        assert r.status_code == 201, r.text
        csv = write_topics_csv(tmp_path / "topics.csv", n=30)
        imported(c, c.post("/datasets/topics/imports", files=[("files", ("topics.csv", csv.read_bytes(), "text/csv"))]))
        assert c.post("/datasets/topics/branches", json={"name": "dev"}).status_code == 201
        stage(c, "t0001", "tech")
        assert c.post("/datasets/topics/commits", json={"message": "relabel t0001", "branch": "dev"}).status_code == 201
        stage(c, "t0002", "sport")
        assert c.post("/datasets/topics/tags", json={"name": "v1", "rev": "main"}).status_code == 201
        assert c.post("/datasets/topics/runs", json={"spec": {"epochs": 1}}).status_code == 201
        truth = {e["key"]: e["label"] for e in c.get("/datasets/topics/examples", params={"limit": 6}).json()["items"]}
        finished = c.post("/datasets/topics/runs", json={"spec": {"epochs": 1}}).json()["id"]
        assert register_model(blobs, finished, ["sport", "food", "tech"], truth, truth) == "topics@1"
        blob = c.get("/datasets/topics/examples/t0003").json()["input"]
    api.add_user("lena", "labeler", ("topics",))
    token = api.add_user(FUZZER, "admin")
    with api.client(token) as c:
        own = c.get(f"/users/{FUZZER}/tokens").json()["items"][0]["id"]
        spare = c.post("/users/lena/tokens", json={"label": "spare"}).json()["id"]
    return {
        "token": token,
        "own_token": own,
        "name": "topics",
        "branch": "dev",
        "rev": "main",
        "key": "t0001",
        "blob_id": blob,
        "run_id": 1,
        "ref": "topics@1",
        "user": "lena",
        "token_id": spare,
    }


def known_values(op, data: dict) -> dict[str, object]:
    """Path parameters of op that name seeded things (users' routes get a user's name)."""
    names = [p.name for p in op.path_parameters]
    known = {n: data[n] for n in names if n in data}
    if "name" in known and op.path.startswith("/api/v1/users/"):
        known["name"] = "lena"
    return known


def negatable(op, mode: GenerationMode) -> bool:
    """Whether cases of mode exist for op: an operation without parameters or body has no invalid requests."""
    return mode is GenerationMode.POSITIVE or any(True for _ in op.iter_parameters()) or bool(op.body)


def fuzz(op, data: dict, mode: GenerationMode, examples: int) -> None:
    """Run generated cases of one operation; raises with the failing case (and a curl line) on the first bad answer."""
    headers = {"Authorization": f"Bearer {data['token']}"}
    strategy = op.as_strategy(generation_mode=mode)
    known = known_values(op, data)
    if known:
        strategy = st.one_of(strategy, op.as_strategy(generation_mode=mode, path_parameters=known))
    if op.method.upper() == "DELETE" and op.path.endswith("/tokens/{token_id}"):
        strategy = strategy.filter(lambda case: case.path_parameters.get("token_id") != data["own_token"])

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        # The API declares no header parameters: a header a negative case makes up (a Content-Length of "vP%1DT=)")
        # is refused by the HTTP server before the app sees the request, which tests uvicorn rather than s2.
        case.headers = None
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

    run()


@pytest.mark.slow(minutes=4)
def test_every_operation_answers_as_its_schema_says(api, tmp_path, blobs, subtests):
    """Generated requests to every operation get no 5xx and only documented statuses, content types and bodies."""
    data = seed(api, tmp_path, blobs)
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    for path, item in httpx.get(f"{api.url}/openapi.json").json()["paths"].items():
        for method, op in item.items():  # errors are documented as problem+json, for client generators too
            if path.startswith("/api/v1/"):
                assert set(op["responses"]["401"]["content"]) == {"application/problem+json"}, (method, path)
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) > 40
    deleting = {"/api/v1/datasets/{name}", "/api/v1/datasets/{name}/branches/{branch}", "/api/v1/datasets/{name}/tags/{tag}"}
    # deleting the seeded dataset and its refs next to last (the rest still finds them), revoking tokens last
    ops.sort(key=lambda op: (op.path.endswith("/tokens/{token_id}"), op.method.upper() == "DELETE" and op.path in deleting))
    for mode, examples in MODES:
        for op in ops:
            if (op.method.upper(), op.path) not in EXCLUDED and negatable(op, mode):
                with subtests.test(msg=f"{mode.value} {op.label}"):  # each operation reports its own failure
                    fuzz(op, data, mode, examples)
    with httpx.Client(base_url=f"{api.url}/api/v1", headers={"Authorization": f"Bearer {data['token']}"}) as c:
        assert c.get("/me").json()["name"] == FUZZER  # the fuzzer's own token survived
    assert "unhandled error" not in api.log()


def test_nul_characters_and_unparsable_bodies_are_invalid_requests(api):
    """A NUL in a path, query or body, or a body that is not UTF-8, is a documented 422 problem (these were 500 and 400)."""
    from server.api.pagination import encode_cursor

    cases = [
        ("GET", "/datasets/a%00b", {}, "path contains a NUL"),
        ("GET", "/audit", {"params": {"actor": "root\x00"}}, "query.actor contains a NUL"),
        ("POST", "/users/root/tokens", {"json": {"label": "laptop\x00"}}, "label contains a NUL"),
        ("GET", "/audit", {"params": {"cursor": encode_cursor("\x00")}}, "is not one this API gave out"),
        ("POST", "/datasets", {"content": b"\xff{", "headers": {"content-type": "application/json"}}, "could not be parsed"),
    ]
    with api.admin as c:
        for method, url, kw, detail in cases:
            r = c.request(method, url, **kw)
            assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
            assert detail in r.json()["detail"], r.text
        assert c.post("/users/root/tokens", json={"label": "laptop"}).status_code == 201
    assert "unhandled error" not in api.log()


def test_lone_surrogates_and_forged_history_cursors_are_invalid_requests(api):
    """JSON's "\\ud800" decodes to a string with no UTF-8 form, and a history cursor carries commit keys: a lone
    surrogate anywhere, or a cursor naming commits that are not this dataset's (or no commit at all), is a 422."""
    from server.api.pagination import encode_cursor
    from tests.api.factories import imported
    from tests.api.test_uploads import create, csv_bytes, upload

    with api.admin as c:
        for name in ("one", "two"):
            create(c, name, modality="text")
            for n in range(2):
                rows = [[f"k{n}", "cat", f"text {n}"]]
                imported(c, upload(c, name, ("t.csv", csv_bytes(rows, ("key", "label", "text")))))
        assert c.post("/datasets/one/branches", json={"name": "work"}).status_code == 201
        surrogate = b'{"edits": [{"key": "k1\\ud800", "label": "cat"}]}'
        r = c.post("/datasets/one/edits", params={"branch": "work"}, content=surrogate, headers={"content-type": "application/json"})
        assert r.status_code == 422 and "lone surrogate" in r.json()["detail"], r.text
        r = c.post("/users/root/tokens", content=b'{"label": "\\udfff"}', headers={"content-type": "application/json"})
        assert r.status_code == 422 and "label" in r.json()["detail"], r.text
        theirs = c.get("/datasets/two/commits", params={"limit": 1}).json()["next_cursor"]
        assert theirs and c.get("/datasets/two/commits", params={"cursor": theirs}).status_code == 200
        forged = {
            "another dataset's cursor": theirs,
            "a number too big for a key": encode_cursor({"f": [2**70]}),
            "no commit at all": encode_cursor({"f": [987654]}),
            "a huge frontier": encode_cursor({"f": [1] * 10_001}),
            "a bool": encode_cursor({"f": [True]}),
        }
        for what, cursor in forged.items():
            r = c.get("/datasets/one/commits", params={"cursor": cursor})
            assert r.status_code == 422 and "cursor" in r.json()["detail"], (what, r.text)
        assert c.get("/datasets/one/edits", params={"branch": "work"}).json()["items"] == []  # nothing was staged
    assert "unhandled error" not in api.log()
