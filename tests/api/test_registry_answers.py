"""Compare, promote, eval pins, watches and fsck over HTTP: bodies documented in OpenAPI, JSON as the services give it."""

import json

import httpx

from tests.api.factories import imported, register_model
from tests.api.test_roles import csv_files, seed

LABELS = ["cat", "dog"]
TYPED = {
    ("get", "/api/v1/compare"): "ModelComparison",
    ("post", "/api/v1/models/{ref}/promote"): "PromoteRead",
    ("post", "/api/v1/datasets/{name}/eval-pins"): "EvalPinRead",
    ("put", "/api/v1/datasets/{name}/watches/{branch}"): "WatchRead",
    ("post", "/api/v1/fsck"): "FsckRead",
}


def as_json(value) -> object:
    """What a service's answer looks like once it is JSON."""
    return json.loads(json.dumps(value))


def test_answers_are_documented_and_keep_the_services_shape(api, blobs):
    """Each of the five answers has a named schema, and its JSON equals what the service (and the local CLI) returns."""
    from server.db import run_in_transaction
    from server.registry.compare import compare
    from server.runs.service import parse_spec

    spec = httpx.get(f"{api.url}/openapi.json").json()
    for (method, path), name in TYPED.items():
        answer = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer == {"$ref": f"#/components/schemas/{name}"}, (method, path, answer)
        assert spec["components"]["schemas"][name]["properties"], name

    with api.admin as c:
        seed(c, "pets")
        before = {e["key"]: e["label"] for e in c.get("/datasets/pets/examples").json()["items"]}
        first = c.post("/datasets/pets/runs", json={}).json()["id"]
        assert imported(c, c.post("/datasets/pets/imports", files=csv_files([["k2", "cat", "a barking dog"]])))["changes"] == 1
        after = {**before, "k2": "cat"}
        second = c.post("/datasets/pets/runs", json={}).json()["id"]
        assert register_model(blobs, first, LABELS, before, before) == "pets@1"
        assert register_model(blobs, second, LABELS, after, before) == "pets@2"  # still says dog: k2 broke

        compared = c.get("/compare", params={"a": "pets@1", "b": "pets@2"})
        assert compared.status_code == 200, compared.text
        expected = run_in_transaction(lambda db: compare(db, blobs, ref_a="pets@1", ref_b="pets@2"))
        assert compared.json() == as_json(expected)
        assert compared.json()["broken"] == ["k2"] and compared.json()["flips"][0]["label_history"][0]["label"] == "cat"
        assert compared.json()["next_cursor"] is None
        commits = compared.json()["commits"]
        diff = c.get("/datasets/pets/diff", params=commits).json()
        assert diff["relabeled"] == [{"key": "k2", "from": "dog", "to": "cat"}] and diff["next_cursor"] is None

        assert c.post("/models/pets@1/promote", json={}).json() == {
            "model": "pets@1",
            "stage": "production",
            "replaced": None,
            "checked": [],
        }
        assert c.post("/models/pets@2/promote", json={"force": True}).json() == {
            "model": "pets@2",
            "stage": "production",
            "replaced": "pets@1",
            "checked": [{"eval_set": "eval", "production": 1.0, "candidate": 0.75}],
        }

        head = c.get("/datasets/pets/commits/main").json()["id"]
        assert c.post("/datasets/pets/eval-pins", json={"name": "gold", "rev": "main"}).json() == {
            "dataset": "pets",
            "name": "gold",
            "source": "pets",
            "commit": head,
            "only_eval_split": False,
        }
        assert c.put("/datasets/pets/watches/main", json={}).json() == {
            "dataset": "pets",
            "branch": "main",
            "spec": parse_spec(None, "text").model_dump(mode="json"),
            "folds": None,  # the data engine's cross-fitting: the default (S2_ANALYSIS_FOLDS)
        }
        assert c.post("/fsck").json() == {"checked": len(list(blobs.iter_ids())), "corrupt": [], "missing": [], "leftovers": [], "ok": True}
