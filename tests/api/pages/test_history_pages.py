"""The dataset home and its history in real Chromium, with a real worker: each commit of a watched branch is a build."""

import time

from tests.api.factories import imported
from tests.api.pages.conftest import PASSWORD, add_labeler, until
from tests.api.pages.test_access import axe_problems
from tests.api.test_loop import digits_zip, wait_succeeded

DIGITS = [str(d) for d in range(10)]
SPEC = {"epochs": 3, "image_size": 8, "image_channels": 1, "batch_size": 32, "learning_rate": 0.01}


def trained_run(eng, commit: str, timeout: float = 240) -> dict:
    """Wait for the watch rule's run of commit to succeed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r for r in eng.get("/runs", params={"dataset": "digits"}).json()["items"] if r["dataset_commit"] == commit]
        if runs:
            return wait_succeeded(eng, runs[0]["id"], timeout)
        time.sleep(0.3)
    raise AssertionError(f"no run of {commit} started")


def relabel(eng, keys: list[str], label_of, message: str) -> str:
    for key in keys:
        seen = eng.get(f"/datasets/digits/examples/{key}", params={"rev": "work"}).json()
        r = eng.put(f"/datasets/digits/edits/{key}", params={"branch": "work"}, json={"label": label_of(seen), "version": seen["version"]})
        assert r.status_code == 200, r.text
    r = eng.post("/datasets/digits/commits", json={"message": message, "branch": "work"})
    assert r.status_code == 201, r.text
    return r.json()["commit"]["id"]


def test_the_history_shows_each_commit_of_a_watched_branch_with_its_model_and_the_metric_change(site, api, cli, workers, tmp_path):
    workers()
    eng = api.client(api.add_user("eve", "engineer"))
    assert cli.run("user", "passwd", "eve", input=PASSWORD + "\n").returncode == 0
    assert eng.post("/datasets", json={"name": "digits", "modality": "image", "labels": DIGITS}).status_code == 201
    imported(eng, eng.post("/datasets/digits/imports", files=[("files", ("digits.zip", digits_zip(tmp_path, 200), "application/zip"))]))
    assert eng.post("/datasets/digits/branches", json={"name": "work"}).status_code == 201
    r = eng.put("/datasets/digits/watches/work", json={"spec": SPEC})
    assert r.status_code == 200, r.text
    keys = [e["key"] for e in eng.get("/datasets/digits/examples", params={"rev": "work", "limit": 40}).json()["items"]]
    # Two commits on the watched branch: forty labels broken, then mended; each is trained.
    broken = relabel(eng, keys, lambda ex: str((int(ex["label"]) + 1) % 10), "break forty labels")
    one = trained_run(eng, broken)
    mended = relabel(eng, keys, lambda ex: ex["key"].split("/")[0], "mend them")
    two = trained_run(eng, mended)
    m1, m2 = eng.get(f"/models/{one['model']}").json(), eng.get(f"/models/{two['model']}").json()
    delta = m2["metrics"]["accuracy"] - m1["metrics"]["accuracy"]

    page = site.page()
    site.sign_in(page, "eve", "/d/digits/commits?branch=work")
    rows = page.locator("table.timeline tbody tr")
    assert rows.count() == 4  # create, import, break, mend: newest first
    assert "mend them" in rows.nth(0).inner_text() and f"v{m2['version']}" in rows.nth(0).inner_text()
    assert "break forty labels" in rows.nth(1).inner_text() and f"v{m1['version']}" in rows.nth(1).inner_text()
    assert f"{m2['metrics']['accuracy']:.3f}" in rows.nth(0).inner_text()
    change = rows.nth(0).locator("a.delta")
    assert change.inner_text() == f"{delta:+.3f}"
    assert change.get_attribute("href") == f"/d/digits/compare/{m1['version']}...{m2['version']}"
    assert rows.nth(1).locator("a.delta").count() == 0  # the first model has nothing before it on the branch
    assert "not trained" in rows.nth(2).inner_text()  # the import happened before the watch rule
    # The diff link of a commit names its parent and itself.
    assert rows.nth(0).locator("td").first.locator("a").get_attribute("href") == f"/d/digits/diff/{broken}...{mended}"
    assert page.locator("svg.chart").count() == 2
    assert page.locator("details.figures table").first.locator("tbody tr").count() == 2  # one row per model
    assert axe_problems(page) == []
    site.shot(page, "history")

    page.goto("/d/digits")
    until(page, "document.querySelector('#label-distribution table.distribution')")
    table = page.locator("#label-distribution table.distribution")
    counts = {r.locator("th").inner_text(): r.locator("td").first.inner_text() for r in table.locator("tbody tr").all()}
    expected = eng.get("/datasets/digits/label-counts").json()
    assert counts == {**{k: f"{v:,}" for k, v in expected["labels"].items()}, "(unlabeled)": "0"}
    work = page.locator("table.list tbody tr", has_text="work")
    assert "watched" in work.inner_text() and "↑2 ↓0" in work.inner_text()
    assert axe_problems(page) == []
    site.shot(page, "home")

    page.goto("/d/digits/commits?branch=nope")
    assert "nope" in page.locator("main").inner_text()
    site.shot(page, "unknown-branch")
    add_labeler(api, cli, "lou", ())
    other = site.page()
    site.sign_in(other, "lou", "/d/digits/commits")
    assert "digits" in other.locator("main").inner_text() and other.locator("table.timeline").count() == 0
    assert site.errors == []
