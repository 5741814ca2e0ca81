"""Merge requests in real Chromium: a labeler opens one and resolves its conflict, an engineer merges it."""

from tests.api.factories import register_model
from tests.api.pages.conftest import LABELS, PASSWORD, add_labeler, until
from tests.api.pages.test_access import axe_problems


def commit_labels(c, branch: str, edits: dict[str, str], message: str) -> None:
    for key, label in edits.items():
        seen = c.get(f"/datasets/digits/examples/{key}", params={"rev": branch}).json()
        r = c.put(f"/datasets/digits/edits/{key}", params={"branch": branch}, json={"label": label, "version": seen["version"]})
        assert r.status_code == 200, r.text
    r = c.post("/datasets/digits/commits", json={"branch": branch, "message": message})
    assert r.status_code == 201, r.text


def test_a_labeler_opens_and_resolves_a_request_and_an_engineer_merges_it(site, api, cli, blobs, digits):
    ana = api.client(add_labeler(api, cli, "ana", ("digits",)))
    add_labeler(api, cli, "lou", ("digits",))
    eng = api.client(api.add_user("eve", "engineer"))
    assert cli.run("user", "passwd", "eve", input=PASSWORD + "\n").returncode == 0
    # main moves on under the labeler: l001 becomes 7 there, while ana makes it 4 on her branch.
    assert eng.post("/datasets/digits/branches", json={"name": "other"}).status_code == 201
    commit_labels(eng, "other", {"l001": "7"}, "l001 is a seven")
    assert eng.post("/datasets/digits/merges", json={"source": "other", "into": "main"}).json()["outcome"] == "fast-forward"
    commit_labels(ana, "work", {"l001": "4", "l002": "5"}, "fix two digits")
    assert eng.post("/models/digits@1/promote", json={"stage": "production"}).status_code == 200

    page = site.page()
    site.sign_in(page, "ana", "/d/digits/merge-requests")
    page.wait_for_selector("body[data-ready='1']")
    assert "No open merge requests" in page.locator("main").inner_text()
    # Into itself: the server's reason on the page, nothing opened.
    page.select_option("#mr-source", "work")
    page.select_option("#mr-target", "work")
    page.fill("#mr-title", "x")
    page.click("#open-form button[type=submit]")
    until(page, "!document.querySelector('#open-form .form-message').hidden")
    assert "into itself" in page.locator("#open-form .form-message").inner_text()
    page.select_option("#mr-target", "main")
    page.fill("#mr-title", "Fix l001 and l002")
    page.fill("#mr-description", "l001 is a 4, not a 1.\n<b>really</b>")
    page.click("#open-form button[type=submit]")
    page.wait_for_url("**/d/digits/merge-requests/1")
    page.wait_for_selector("body[data-ready='1']")
    main = page.locator("main").inner_text()
    assert "ana asks to merge work into main" in main and "<b>really</b>" in main
    row = page.locator("table.conflicts tbody tr")
    assert row.count() == 1 and row.locator("th").inner_text() == "l001"
    assert [c.inner_text() for c in row.locator("td").all()[:3]] == ["1", "7", "4"]
    assert "No model of work's head yet" in page.locator("#mr-check").inner_text()
    # The branch's head is trained meanwhile: the check panel (polled every 10 s) follows.
    run = eng.post("/datasets/digits/runs", json={"rev": "work"}).json()["id"]
    truth = {f"l{d:03d}": str(d) for d in range(10)}
    register_model(blobs, run, LABELS, truth, {**truth, "l003": "8"})  # the branch's model: 0.9 on eval
    page.evaluate("() => htmx.ajax('GET', document.querySelector('#mr-check').getAttribute('hx-get'), '#mr-check')")
    until(page, "document.querySelector('#mr-check').textContent.includes('digits@2 against production digits@1')")
    assert "-0.100" in page.locator("#mr-check").inner_text()  # accuracy 0.9 against 1.0
    assert page.locator("button[data-action=merge]").count() == 0  # a labeler does not merge
    until(page, "document.querySelector('#mr-diff .diff-counts')")  # the branch's changes since it parted
    assert axe_problems(page) == []
    site.shot(page, "conflict")
    with page.expect_navigation():  # each action reloads the page as the server now sees it
        row.locator("button[data-resolve=theirs]").click()
    until(page, "document.querySelector('button[data-resolve=theirs][aria-pressed=true]')")
    assert page.locator("#conflicts-left").count() == 0
    page.fill("#comment-body", "took <mine> for l001")
    with page.expect_navigation():
        page.click("#comment-form button[type=submit]")
    until(page, "document.querySelector('.comments') && document.querySelector('.comments').textContent.includes('took <mine>')")

    lou = site.page()
    site.sign_in(lou, "lou", "/d/digits/merge-requests/1")
    assert lou.locator("button[data-resolve]").count() == 0 and "work's" in lou.locator("table.conflicts").inner_text()

    boss = site.page()
    site.sign_in(boss, "eve", "/d/digits/merge-requests/1")
    boss.wait_for_selector("body[data-ready='1']")
    with boss.expect_navigation():
        boss.click("button[data-action=approve]")
    until(boss, "document.querySelector('.mr-summary') && document.querySelector('.mr-summary').textContent.includes('approved by eve')")
    assert axe_problems(boss) == []
    with boss.expect_navigation():
        boss.click("button[data-action=merge]")
    until(boss, "document.querySelector('#mr-state') && document.querySelector('#mr-state').textContent === 'merged'")
    site.shot(boss, "merged")
    assert eng.get("/datasets/digits/examples/l001", params={"rev": "main"}).json()["label"] == "4"
    assert eng.get("/datasets/digits/examples/l002", params={"rev": "main"}).json()["label"] == "5"

    boss.goto("/d/digits/merge-requests?state=merged")
    assert "Fix l001 and l002" in boss.locator("table.list").inner_text()
    assert axe_problems(boss) == []
    site.shot(boss, "list")
    boss.goto("/d/digits/merge-requests/9")
    assert "!9" in boss.locator("main").inner_text()
    assert site.errors == []


def test_a_watched_branch_under_review_is_trained_by_a_real_worker_and_its_model_is_the_check(site, api, cli, workers, tmp_path):
    from tests.api.factories import imported
    from tests.api.pages.test_history_pages import SPEC, relabel, trained_run
    from tests.api.test_loop import digits_zip, wait_succeeded

    workers()
    eng = api.client(api.add_user("eve", "engineer"))
    assert eng.post("/datasets", json={"name": "digits", "modality": "image", "labels": LABELS}).status_code == 201
    imported(eng, eng.post("/datasets/digits/imports", files=[("files", ("digits.zip", digits_zip(tmp_path, 200), "application/zip"))]))
    production = wait_succeeded(eng, eng.post("/datasets/digits/runs", json={"spec": SPEC}).json()["id"], 240)["model"]
    assert eng.post(f"/models/{production}/promote", json={"stage": "production"}).status_code == 200
    assert eng.post("/datasets/digits/branches", json={"name": "work"}).status_code == 201
    assert eng.put("/datasets/digits/watches/work", json={"spec": SPEC}).status_code == 200
    ana = api.client(add_labeler(api, cli, "ana", ("digits",)))
    keys = [e["key"] for e in ana.get("/datasets/digits/examples", params={"rev": "work", "limit": 5}).json()["items"]]
    head = relabel(ana, keys, lambda ex: str((int(ex["label"]) + 1) % 10), "five labels for review")
    r = ana.post("/datasets/digits/merge-requests", json={"source": "work", "title": "Five labels"})
    assert r.status_code == 201, r.text
    built = trained_run(eng, head)["model"]  # the watch rule trained the branch's new head
    page = site.page()
    site.sign_in(page, "ana", "/d/digits/merge-requests/1")
    check = page.locator("#mr-check").inner_text()
    assert f"{built} against production {production}" in check
    m, p = eng.get(f"/models/{built}").json(), eng.get(f"/models/{production}").json()
    assert f"{m['metrics']['accuracy'] - p['metrics']['accuracy']:+.3f}" in check
    # The request's changes: the five relabels since the branch parted from main (loaded after the page).
    until(page, "document.querySelector('#mr-diff').textContent.replace(/\\s+/g, ' ').includes('5 relabeled')")
    site.shot(page, "trained-check")
    assert site.errors == []
