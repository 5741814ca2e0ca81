"""POST /runs/{id}/retry: a failed or cancelled run trains again as a new run of the same commit and spec."""

import httpx

from tests.api.factories import register_model
from tests.api.test_roles import assert_problem, seed

SPEC = {"epochs": 2, "batch_size": 8}


def test_an_engineer_retries_a_cancelled_run_with_its_commit_and_spec(api, blobs):
    """Only failed or cancelled runs, only engineers; the new run is queued, audited, and the old one stays as it ended."""
    with api.admin as admin:
        seed(admin, "pets")
        seed(admin, "birds")
    eve = api.client(api.add_user("eve", "engineer"))
    lee = api.client(api.add_user("lee", "labeler", ("pets",)))

    queued = eve.post("/datasets/pets/runs", json={"spec": SPEC}).json()
    assert "only a failed or cancelled run" in assert_problem(eve.post(f"/runs/{queued['id']}/retry"), 409)["detail"]
    assert eve.post(f"/runs/{queued['id']}/cancel").json()["state"] == "cancelled"
    assert "needs an engineer" in assert_problem(lee.post(f"/runs/{queued['id']}/retry"), 403)["detail"]

    r = eve.post(f"/runs/{queued['id']}/retry")
    assert r.status_code == 201, r.text
    retried = r.json()
    assert retried["id"] > queued["id"] and retried["state"] == "queued" and retried["requested_by"] == "eve"
    same = ("dataset", "dataset_commit", "spec", "spec_hash", "queue")
    assert {k: retried[k] for k in same} == {k: queued[k] for k in same}
    assert eve.get(f"/runs/{queued['id']}").json()["state"] == "cancelled"  # the old run keeps its end
    trail = api.admin.get("/audit", params={"actor": "eve", "limit": 1}).json()["items"][0]
    assert (trail["action"], trail["target"], trail["detail"]) == ("run.retry", str(queued["id"]), {"run": retried["id"]})

    # A run that succeeded is not retried (train again with POST /datasets/NAME/runs); an unknown one is 404.
    done = eve.post("/datasets/pets/runs", json={}).json()["id"]
    register_model(blobs, done, ["cat", "dog"], {"k1": "cat"}, {"k1": "cat"})
    assert "is succeeded" in assert_problem(eve.post(f"/runs/{done}/retry"), 409)["detail"]
    assert "no training run 99999" in assert_problem(eve.post("/runs/99999/retry"), 404)["detail"]

    # The answer is documented: 201 with a RunRead.
    op = httpx.get(f"{api.url}/openapi.json").json()["paths"]["/api/v1/runs/{run_id}/retry"]["post"]
    assert op["responses"]["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/RunRead"}

    # The read rule the pages share (server.runs.access) still holds over the API.
    birds = eve.post("/datasets/birds/runs", json={}).json()["id"]
    assert "not one of them" in assert_problem(lee.get(f"/runs/{birds}"), 403)["detail"]
    assert "not one of them" in assert_problem(lee.get("/runs/99999"), 403)["detail"]  # ids reveal nothing
    assert "add ?dataset=NAME" in assert_problem(lee.get("/runs"), 403)["detail"]
    assert {run["dataset"] for run in lee.get("/runs", params={"dataset": "pets"}).json()["items"]} == {"pets"}
