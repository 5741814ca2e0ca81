"""The whole loop over HTTP only: upload, train, follow live, relabel on a branch, merge, retrain, compare, promote."""

import io
import json
import time
import zipfile

import httpx
import pytest

from tests.api.factories import imported
from tests.factories import write_digits_folder

DIGITS = [str(d) for d in range(10)]
SPEC = {"epochs": 6, "image_size": 16, "image_channels": 1, "batch_size": 32, "learning_rate": 0.003}
RELABELED = 3


def digits_zip(tmp_path, limit: int) -> bytes:
    """scikit-learn's digits as a zip of LABEL/FILE.png, as a person would upload an ImageFolder."""
    root = write_digits_folder(tmp_path / "digits", limit)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(root.rglob("*.png")):
            zf.write(path, path.relative_to(root).as_posix())
    return buf.getvalue()


def follow(client: httpx.Client, run_id: int) -> list[tuple[str, dict]]:
    """Every Server-Sent Event frame of a run's stream, up to and including `end`."""
    frames, event, data = [], None, []
    with client.stream("GET", f"/runs/{run_id}/events", params={"interval": 0.1}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data.append(line.removeprefix("data: "))
            elif line == "" and event is not None:
                frames.append((event, json.loads("\n".join(data))))
                if event == "end":
                    break
                event, data = None, []
    return frames


def wait_succeeded(client: httpx.Client, run_id: int, timeout: float = 180) -> dict:
    """Poll GET /runs/{id} until the run ends; the run, which must have succeeded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/runs/{run_id}").json()
        if run["state"] in ("succeeded", "failed", "cancelled"):
            assert run["state"] == "succeeded", run["error"]
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not end within {timeout}s: {run}")


@pytest.mark.slow(minutes=1)
def test_engineer_and_labeler_take_a_dataset_from_upload_to_a_promoted_model(api, workers, tmp_path):
    """Train, relabel on a branch, merge, retrain, compare and promote: every step an HTTP request."""
    worker = workers()  # starts while the data goes up
    eng = api.client(api.add_user("eve", "engineer"))
    r = eng.post("/datasets", json={"name": "digits", "modality": "image", "labels": DIGITS})
    assert r.status_code == 201, r.text
    job = imported(
        eng, eng.post("/datasets/digits/imports", files=[("files", ("digits.zip", digits_zip(tmp_path, 600), "application/zip"))])
    )
    assert job["examples"] == job["rows"] == 600
    first_import = job["commit"]

    r = eng.post("/datasets/digits/runs", json={"spec": SPEC})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["state"] == "queued" and first["dataset_commit"] == first_import and first["requested_by"] == "eve"
    frames = follow(eng, first["id"])
    runs = [body for event, body in frames if event == "run"]
    assert any(run["state"] == "running" and (run["progress"] or {}).get("step", 0) > 0 for run in runs), runs
    assert frames[-1] == ("end", {"state": "succeeded", "model": "digits@1"})
    assert runs[-1]["state"] == "succeeded" and runs[-1]["model"] == "digits@1"

    # A labeler corrects labels on a branch; an engineer merges the work into main.
    lena = api.client(api.add_user("lena", "labeler", ("digits",)))
    assert eng.post("/datasets/digits/branches", json={"name": "relabel"}).status_code == 201
    page = lena.get("/datasets/digits/examples", params={"rev": "relabel", "limit": RELABELED}).json()
    assert len(page["items"]) == RELABELED and page["next_cursor"]
    edits = {}
    for item in page["items"]:
        seen = lena.get(f"/datasets/digits/examples/{item['key']}", params={"rev": "relabel"}).json()
        edits[seen["key"]] = str((int(seen["label"]) + 1) % 10)
        r = lena.put(
            f"/datasets/digits/edits/{seen['key']}",
            params={"branch": "relabel"},
            json={"label": edits[seen["key"]], "version": seen["version"]},
        )
        assert r.status_code == 200, r.text
    r = lena.post("/datasets/digits/commits", json={"message": "fix three labels", "branch": "relabel"})
    assert r.status_code == 201, r.text
    assert r.json()["commit"]["author"] == "lena" and r.json()["commit"]["changes"] == RELABELED
    assert lena.post("/datasets/digits/merges", json={"source": "relabel", "into": "main"}).status_code == 403
    r = eng.post("/datasets/digits/merges", json={"source": "relabel", "into": "main"})
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "fast-forward"

    second = eng.post("/datasets/digits/runs", json={"spec": SPEC}).json()
    assert second["dataset_commit"] == r.json()["head"]
    assert wait_succeeded(eng, second["id"])["model"] == "digits@2"
    one, two = eng.get("/models/digits@1").json(), eng.get("/models/digits@2").json()
    assert one["metrics"]["accuracy"] > 0.8 and two["metrics"]["accuracy"] > 0.8

    report = eng.get("/compare", params={"a": "digits@1", "b": "digits@2"}).json()
    assert (report["a"], report["b"]) == ("digits@1", "digits@2")
    accuracy = report["metrics"]["accuracy"]
    assert (accuracy["a"], accuracy["b"]) == (one["metrics"]["accuracy"], two["metrics"]["accuracy"])
    assert abs(accuracy["delta"] - (accuracy["b"] - accuracy["a"])) < 1e-6
    assert set(report["metrics"]) >= {"accuracy", "macro_f1", "loss"}
    assert set(report["per_class"]) == set(DIGITS) and set(report["per_class"]["3"]["f1"]) == {"a", "b", "delta"}
    assert isinstance(report["fixed"], list) and isinstance(report["broken"], list)
    assert set(report["fixed"]).isdisjoint(report["broken"])
    data_diff = eng.get("/datasets/digits/diff", params=report["commits"]).json()  # the data change between the two builds
    relabeled = {row["key"]: (row["from"], row["to"]) for row in data_diff["relabeled"]}
    assert relabeled == {key: (key.split("/")[0], label) for key, label in edits.items()}
    assert data_diff["added"] == data_diff["removed"] == []

    # Promotion: the first model goes to production; the second only if it does not regress.
    assert lena.post("/models/digits@1/promote", json={"stage": "production"}).status_code == 403
    r = eng.post("/models/digits@1/promote", json={"stage": "production"})
    assert r.status_code == 200, r.text
    production = eng.get("/models/digits@production").json()
    assert (production["version"], production["stage"], production["promoted_by"]) == (1, "production", "eve")
    r = eng.post("/models/digits@2/promote", json={"stage": "production"})
    if accuracy["a"] - accuracy["b"] > 0.01:  # S2_PROMOTE_MAX_REGRESSION's default
        assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json", r.text
        assert "worse than production digits@1" in r.json()["detail"] and "accuracy" in r.json()["detail"]
        assert eng.get("/models/digits@production").json()["version"] == 1
    else:
        assert r.status_code == 200, r.text
        assert r.json()["replaced"] == "digits@1"
        assert eng.get("/models/digits@production").json()["version"] == 2
    listed = eng.get("/datasets/digits/models").json()
    assert [m["id"] for m in listed["items"]] == ["digits@2", "digits@1"] and listed["next_cursor"] is None
    assert 's2_training_runs{state="succeeded"} 2.0' in httpx.get(f"{api.url}/metrics").text
    assert "Traceback" not in api.log() and "Traceback" not in worker.output()
