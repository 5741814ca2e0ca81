"""The Label Studio routes with no Label Studio server: refusals, a Label Studio that cannot be reached (502), the
webhook's secret, and the signed media URLs Label Studio's browser loads images from (the real-server tests are in
tests/labelstudio/)."""

import socket
import time

import httpx

from tests.api.conftest import free_port
from tests.api.factories import imported
from tests.api.test_cli_remote import remote
from tests.api.test_uploads import IMAGES, create, examples, upload, zip_bytes
from tests.factories import png_bytes

PROBLEM = "application/problem+json"


def problem(r: httpx.Response, status: int, *names: str) -> str:
    """The detail of a problem+json answer with status, checked to name each of names."""
    assert r.status_code == status, f"{r.status_code} {r.text}"
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    detail = r.json()["detail"]
    for name in names:
        assert name in detail, (name, detail)
    return detail


def link(dataset: str, url: str, *, webhook_secret: str | None = None) -> None:
    """Link dataset to a made-up Label Studio project, as `connect` records it (no Label Studio needed)."""
    from labeling.labelstudio.models import LabelStudioLink
    from server.datasets.datasets import get_dataset
    from server.db import run_in_transaction

    def add(db):
        ds = get_dataset(db, dataset)
        db.add(
            LabelStudioLink(
                dataset_id=ds.id,
                url=url,
                token="secret-ls-token",
                project=7,
                title="s2 pets (main)",
                branch="main",
                webhook_id=3 if webhook_secret else None,
                webhook_secret=webhook_secret,
                created_by="root",
            )
        )

    run_in_transaction(add)


def pets(c) -> dict[str, dict]:
    """An image dataset `pets` with three imported images; its examples by key."""
    create(c, "pets")
    imported(c, upload(c, "pets", ("pets.zip", zip_bytes(IMAGES))))
    return examples(c, "pets")


def test_unlinked_datasets_and_unreachable_label_studio_are_clear_problems(api, s2env, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    with api.admin as c:
        create(c, "pets")
        for method, path in [("GET", ""), ("DELETE", ""), ("POST", "/pull"), ("DELETE", "/webhook"), ("GET", "/tasks")]:
            problem(
                c.request(method, f"/datasets/pets/labelstudio{path}"),
                404,
                "'pets' is not linked to Label Studio",
                "s2 labelstudio connect",
            )
        problem(c.post("/datasets/pets/labelstudio/push", json={}), 404, "not linked")
        problem(c.post("/datasets/pets/labelstudio/webhook"), 422, "S2_PUBLIC_URL")  # this server has none
        problem(c.get("/datasets/nope/labelstudio"), 404, "nope")

        body = {"url": "ftp://ls.example", "token": "t0ken-1234"}
        detail = problem(c.put("/datasets/pets/labelstudio", json=body), 422, "ftp://ls.example", "http(s)://")
        assert "t0ken" not in detail
        started = time.monotonic()
        r = c.put("/datasets/pets/labelstudio", json={**body, "url": closed})
        detail = problem(r, 502, closed, "cannot be reached")
        assert "t0ken" not in detail and time.monotonic() - started < 30
        problem(c.get("/datasets/pets/labelstudio"), 404, "not linked")  # nothing half-made

    token = api.add_user("lee", "labeler", ("pets",))
    with api.client(token) as c:
        problem(c.put("/datasets/pets/labelstudio", json={**body, "url": closed}), 403, "engineer")
        problem(c.get("/datasets/pets/labelstudio"), 404, "not linked")  # a reader of pets may look

    # the CLI on the server: one stderr line naming the address, as with the local store
    eng = remote(s2env, tmp_path, api, api.add_user("eve", "engineer"))
    line = eng.fails("labelstudio", "connect", "pets", "--url", closed, "--token", "t0ken-1234")
    assert closed in line and "cannot be reached" in line and "t0ken" not in line, line
    assert "not linked to Label Studio" in eng.fails("labelstudio", "status", "pets")
    assert "unhandled error" not in api.log()


def test_a_link_reads_without_its_token_and_unlinks_with_a_dead_label_studio_only_when_forced(api):
    closed = f"http://127.0.0.1:{free_port()}"
    with api.admin as c:
        create(c, "pets", "text")
        link("pets", closed, webhook_secret="hook-secret")
        r = c.get("/datasets/pets/labelstudio")
        assert r.status_code == 200, r.text
        got = r.json()
        assert (got["project"], got["branch"], got["url"], got["webhook"], got["tasks"]) == (7, "main", closed, True, 0)
        assert got["project_url"] == f"{closed}/projects/7/data" and "secret" not in r.text
        assert c.get("/datasets/pets/labelstudio/tasks", params={"state": "disputed"}).json() == []
        problem(c.get("/datasets/pets/labelstudio/tasks", params={"state": "pushed"}), 422, "state")

        r = c.post("/datasets/pets/labelstudio/push", json={"limit": 5})  # nothing to push: Label Studio is not asked
        assert r.status_code == 200 and (r.json()["pushed"], r.json()["queue"]) == (0, "unlabeled"), r.text
        problem(c.post("/datasets/pets/labelstudio/pull"), 502, closed)
        problem(c.delete("/datasets/pets/labelstudio"), 502, closed, "delete webhook 3")  # the webhook cannot be deleted: still linked
        assert c.get("/datasets/pets/labelstudio").status_code == 200
        r = c.delete("/datasets/pets/labelstudio", params={"force": True})
        assert r.status_code == 200, r.text
        assert r.json() == {"dataset": "pets", "project": 7, "url": closed, "tasks_forgotten": 0, "webhook_removed": False}
        problem(c.get("/datasets/pets/labelstudio"), 404, "not linked")
        audit = [(e["action"], e["target"]) for e in c.get("/audit", params={"limit": 5}).json()["items"]]
        assert audit[:2] == [("labelstudio.disconnect", "pets"), ("labelstudio.push", "pets")], audit
    assert "unhandled error" not in api.log()


def test_the_webhook_needs_the_links_secret_and_answers_before_it_pulls(api):
    hole = socket.socket()  # a "Label Studio" that takes connections and never answers: the pull waits on it
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    silent = f"http://127.0.0.1:{hole.getsockname()[1]}"
    call = {"action": "ANNOTATION_CREATED", "annotation": {"id": 5, "task": 41}, "task": {"id": 41}}
    with api.admin as c:
        create(c, "pets")
    with httpx.Client(base_url=f"{api.url}/api/v1", timeout=30) as c:  # no API token: Label Studio calls it
        problem(c.post("/labelstudio/webhook/pets", json=call), 403, "X-S2-Webhook-Secret")  # not linked: no secret to match
        link("pets", silent, webhook_secret="hook-secret")
        problem(c.post("/labelstudio/webhook/pets", json=call), 403, "secret")
        problem(c.post("/labelstudio/webhook/pets", json=call, headers={"X-S2-Webhook-Secret": "guess"}), 403, "secret")
        problem(c.post("/labelstudio/webhook/pets", json=call, headers={"X-S2-Webhook-Secret": b"h\xe9"}), 403, "secret")
        problem(c.post("/labelstudio/webhook/nope", json=call, headers={"X-S2-Webhook-Secret": "hook-secret"}), 403, "nope")
        good = {"X-S2-Webhook-Secret": "hook-secret"}
        problem(
            c.post("/labelstudio/webhook/pets", content=b"{not json", headers={**good, "content-type": "application/json"}), 422, "JSON"
        )
        problem(c.post("/labelstudio/webhook/pets", json=[1, 2], headers=good), 422, "JSON object")
        r = c.post("/labelstudio/webhook/pets", json={"action": "PROJECT_UPDATED"}, headers=good)
        assert (r.status_code, r.json()) == (202, {"accepted": []})
        started = time.monotonic()
        r = c.post("/labelstudio/webhook/pets", json=call, headers=good)
        assert (r.status_code, r.json()) == (202, {"accepted": [41]})
        r = c.post("/labelstudio/webhook/pets", json={"annotations": [{"task": 42}, {"task": {"id": 41}}]}, headers=good)
        assert (r.status_code, r.json()) == (202, {"accepted": [42, 41]})
        assert time.monotonic() - started < 5  # answered while the pull still waits for Label Studio
        assert c.get("/datasets/pets/labelstudio", headers={"Authorization": f"Bearer {api.admin_token}"}).status_code == 200
    hole.close()  # Label Studio goes away: the waiting pull fails, and says so in the log (Label Studio is not waiting)
    deadline = time.monotonic() + 30
    while "pulling tasks [42, 41] of dataset 'pets' failed" not in api.log():  # the call made meanwhile: the next round
        assert time.monotonic() < deadline, api.log()[-3000:]
        time.sleep(0.1)
    assert "pulling tasks [41] of dataset 'pets' failed" in api.log() and silent in api.log()
    assert "unhandled error" not in api.log()


def test_signed_media_serves_an_input_until_it_expires_with_no_token(api, blobs):
    from labeling.labelstudio.media import signed_media_url, signing_secret
    from server.db import run_in_transaction

    with api.admin as c:
        blob = pets(c)["cat/c1.png"]["input"]
        create(c, "birds")
        imported(c, upload(c, "birds", ("birds.zip", zip_bytes({"cat/b0.png": png_bytes(7)}))))
        other = examples(c, "birds")["cat/b0.png"]["input"]
    secret = run_in_transaction(signing_secret)
    url = signed_media_url(api.url, secret, "pets", blob, 60)
    assert url.startswith(f"{api.url}/api/v1/signed/pets/media/{blob}?expires=")
    with httpx.Client(timeout=30) as c:  # no Authorization header at all
        r = c.get(url)
        assert r.status_code == 200, r.text
        assert r.content == IMAGES["cat/c1.png"] and r.headers["content-type"] == "image/png" and r.headers["etag"] == f'"{blob}"'
        cache = r.headers["cache-control"]
        assert cache.startswith("private, max-age=") and 0 < int(cache.rsplit("=", 1)[1]) <= 60, cache
        cached = c.get(url, headers={"If-None-Match": r.headers["etag"]})
        assert cached.status_code == 304 and cached.content == b""

        tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
        problem(c.get(tampered), 403, "signature", blob)
        problem(c.get(url.replace("expires=", "expires=1")), 403, "signature")  # a later expiry is another signature
        problem(c.get(url.split("&signature=")[0] + "&signature=n%C3%A9%04"), 403, "signature")  # not even hex
        problem(c.get(url.replace("/signed/pets/", "/signed/birds/")), 403, "signature")  # signed for pets only
        problem(c.get(signed_media_url(api.url, secret, "pets", blob, -10)), 403, "expired")
        problem(c.get(signed_media_url(api.url, secret, "pets", blob, 60, now=time.time() - 3600)), 403, "expired")
        problem(c.get(signed_media_url(api.url, b"not the server's secret", "pets", blob, 60)), 403, "signature")
        problem(c.get(signed_media_url(api.url, secret, "pets", other, 60)), 404, other, "pets")  # birds' input, signed for pets
        problem(c.get(signed_media_url(api.url, secret, "pets", "ab" * 40, 60)), 404, "64 lowercase hex")
        problem(c.get(f"{api.url}/api/v1/signed/pets/media/{blob}"), 422, "expires")
    with api.admin as c:  # images go to Label Studio as signed URLs of S2_PUBLIC_URL: without it, nothing is sent
        link("pets", f"http://127.0.0.1:{free_port()}")
        problem(c.post("/datasets/pets/labelstudio/push", json={"queue": "all"}), 422, "S2_PUBLIC_URL")
        assert c.get("/datasets/pets/labelstudio").json()["tasks"] == 0
    assert "unhandled error" not in api.log()
