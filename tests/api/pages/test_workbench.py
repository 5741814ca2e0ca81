"""The labeling workbench in real Chromium: keyboard labeling, reloads, a server that goes away, conflicts, commits."""

import json

from tests.api.conftest import start_server
from tests.api.pages.conftest import add_labeler, until
from tests.conftest import stop_process


def staged(api, token: str) -> dict[str, str]:
    with api.client(token) as c:
        r = c.get("/datasets/digits/edits", params={"branch": "work", "limit": 1000})
        assert r.status_code == 200, r.text
        return {e["key"]: e["label"] for e in r.json()["items"]}


def wait_saved(page) -> None:
    until(page, "window.s2workbench && window.s2workbench.outbox.size === 0")


def shown_key(page) -> str:
    return page.locator("#details dd a").first.inner_text()


def open_workbench(site, page, name: str, queue: str = "unlabeled"):
    site.sign_in(page, name, f"/d/digits/label?branch=work&queue={queue}")
    page.wait_for_selector("body[data-ready='1']")


def test_a_labeler_labels_twenty_by_keyboard_reloads_midway_and_commits_exactly_those(site, api, cli, digits):
    token = add_labeler(api, cli, "ana", ("digits",))
    page = site.page()
    open_workbench(site, page, "ana")
    site.shot(page, "workbench")
    expected: dict[str, str] = {}
    # The model's guess is pre-selected: its button is marked, and Enter accepts it.
    first = shown_key(page)
    assert page.locator("#labels button.guess").get_attribute("data-label") == digits["guess"][first]
    for i in range(10):
        key = shown_key(page)
        if i % 3 == 0:
            page.keyboard.press("Enter")
            expected[key] = digits["guess"][key]
        else:
            label = str((i * 3) % 10)
            page.keyboard.press(label)
            expected[key] = label
        until(page, f"document.querySelector('#details dd a').textContent !== {key!r}")
    wait_saved(page)
    assert page.locator("#staged-count").inner_text() == "10"
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    # The unlabeled queue goes on after the ten already staged; nothing was lost.
    assert shown_key(page) not in expected
    assert page.locator("#staged-count").inner_text() == "10"
    for i in range(10):
        key = shown_key(page)
        label = str((i * 5 + 1) % 10)
        page.keyboard.press(label)
        expected[key] = label
        until(page, f"document.querySelector('#details dd a').textContent !== {key!r}")
    wait_saved(page)
    assert staged(api, token) == expected
    # `u` takes the last label back, and it comes back with the same key.
    last = list(expected)[-1]
    page.keyboard.press("u")
    until(page, f"document.querySelector('#details dd a').textContent === {last!r}")
    wait_saved(page)
    assert last not in staged(api, token)
    page.keyboard.press(expected[last])
    wait_saved(page)
    assert staged(api, token) == expected

    page.keyboard.press("Shift+C")
    page.wait_for_selector("#commit-dialog[open]")
    until(page, "document.querySelector('#commit-summary').textContent.includes('20 staged edit')")
    page.keyboard.type("label twenty digits")
    site.shot(page, "commit-dialog")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    commit = page.locator("#commit-id")
    commit.wait_for()
    site.shot(page, "committed")
    commit_id = commit.inner_text()
    with api.client(token) as c:
        r = c.get("/datasets/digits/diff", params={"a": f"{commit_id}~1", "b": commit_id, "limit": 1000})
        assert r.status_code == 200, r.text
        diff = r.json()
    changed = {rl["key"]: rl["to"] for rl in diff["relabeled"]}
    assert changed == expected
    assert diff["added"] == [] and diff["removed"] == []
    assert site.errors == []


def test_edits_made_while_the_server_is_down_wait_in_the_page_and_land_when_it_returns(site, api, cli, digits, s2env, broker_url, tmp_path):
    token = add_labeler(api, cli, "ana", ("digits",))
    page = site.page()
    open_workbench(site, page, "ana")
    stop_process(api.proc)
    keys = []
    for label in ("4", "6"):
        keys.append(shown_key(page))
        page.keyboard.press(label)
    until(page, "document.querySelector('#sync').textContent.includes('cannot be reached')")
    assert "2 edit(s) unsaved" in page.locator("#sync").inner_text()
    site.shot(page, "offline")
    port = int(api.url.rsplit(":", 1)[1])
    proc = start_server({**s2env, "S2_BROKER_URL": broker_url}, tmp_path / "again.log", port)
    try:
        wait_saved(page)
        assert staged(api, token) == {keys[0]: "4", keys[1]: "6"}
        until(page, "document.querySelector('#sync').textContent.includes('All edits saved')")
    finally:
        stop_process(proc)
    assert site.errors == []


def test_two_labelers_conflict_on_one_example_and_the_second_chooses(site, api, cli, digits):
    add_labeler(api, cli, "ana", ("digits",))
    bob = add_labeler(api, cli, "bob", ("digits",))
    ana_page, bob_page = site.page(), site.page()
    open_workbench(site, ana_page, "ana", queue="all")
    open_workbench(site, bob_page, "bob", queue="all")
    key = shown_key(ana_page)
    assert shown_key(bob_page) == key
    ana_page.keyboard.press("3")
    wait_saved(ana_page)
    bob_page.keyboard.press("5")
    conflict = bob_page.locator("#conflicts .conflict")
    conflict.wait_for()
    assert f"Conflict on {key}" in conflict.inner_text() and "ana changed it to 3" in conflict.inner_text()
    site.shot(bob_page, "conflict")
    conflict.get_by_role("button", name="Use mine: 5").click()
    wait_saved(bob_page)
    with api.client(bob) as c:
        edit = c.get("/datasets/digits/edits", params={"branch": "work"}).json()["items"][0]
    assert (edit["key"], edit["label"], edit["author"]) == (key, "5", "bob")
    assert site.errors == []


XSS = ['<img src=x onerror="window.__pwned=1">', "</script><script>window.__pwned=2</script>", '"><svg onload="window.__pwned=3">']


def test_text_from_a_dataset_is_shown_as_text_and_never_runs(site, api, cli, tmp_path):
    import csv

    source = tmp_path / "xss.csv"
    with open(source, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "label", "text"])
        for i, text in enumerate(XSS):
            w.writerow([f"x{i}", "", text])
    cli.ok("dataset", "create", "notes", "--modality", "text", "--labels", "<b>bold<b>,plain")
    cli.ok("import", "notes", source)
    cli.ok("branch", "notes", "work")
    add_labeler(api, cli, "ana", ("notes",))
    page = site.page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    site.sign_in(page, "ana", "/d/notes/label?branch=work&queue=all")
    page.wait_for_selector("body[data-ready='1']")
    for text in XSS:
        assert page.locator(".viewer .text").inner_text() == text
        page.keyboard.press("ArrowRight")
    assert page.locator("#labels button").first.inner_text().endswith("<b>bold<b>")
    site.shot(page, "workbench-text")
    page.goto("/d/notes/examples/x0?rev=work")
    assert page.locator(".example-input .text").inner_text() == XSS[0]
    site.shot(page, "example")
    assert page.evaluate("window.__pwned") is None and dialogs == []
    assert site.errors == []


def test_grid_mode_labels_a_range_chosen_by_keys_and_by_mouse(site, api, cli, digits):
    token = add_labeler(api, cli, "ana", ("digits",))
    page = site.page()
    open_workbench(site, page, "ana")
    page.keyboard.press("g")
    page.locator("#grid-toggle[aria-pressed='true']").wait_for()
    page.locator(".grid .tile").first.wait_for()
    assert page.locator(".grid .tile").count() == 30  # the whole (short) queue fits one page of 48
    for _ in range(4):
        page.keyboard.press("Shift+ArrowRight")
    assert page.locator(".tile.selected").count() == 5
    page.keyboard.press("7")
    wait_saved(page)
    keys = digits["keys"]
    assert staged(api, token) == {k: "7" for k in keys[:5]}
    # With the mouse: a click, then a Shift+click, selects the range between them.
    page.locator("#tile-10").click()
    page.locator("#tile-13").click(modifiers=["Shift"])
    assert page.locator(".tile.selected").count() == 4
    site.shot(page, "grid")
    page.keyboard.press("2")
    wait_saved(page)
    assert staged(api, token) == {**{k: "7" for k in keys[:5]}, **{k: "2" for k in keys[10:14]}}
    # u takes back the whole batch.
    page.keyboard.press("u")
    wait_saved(page)
    assert staged(api, token) == {k: "7" for k in keys[:5]}
    assert site.errors == []


def test_a_review_queue_and_the_filters_open_in_the_workbench(site, api, cli, digits):
    add_labeler(api, cli, "ana", ("digits",))
    cli.ok("review", "add", "digits", "u004", "--score", "0.9", "--reason", "the model is unsure", "-Q", "suspects")
    page = site.page()
    open_workbench(site, page, "ana", queue="suspects")
    assert shown_key(page) == "u004"
    assert "the model is unsure" in page.locator("#details").inner_text()
    assert page.locator("#queue option").all_inner_texts() == ["all", "unlabeled", "changed", "suspects"]
    # The filter form: only the examples the model guesses as 7.
    page.select_option("#queue", "all")
    page.wait_for_selector("body[data-ready='1']")
    page.select_option("#f-predicted", "7")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**predicted=7**")
    page.wait_for_selector("body[data-ready='1']")
    sevens = [k for k, g in digits["guess"].items() if g == "7"]
    assert shown_key(page) == sevens[0]
    assert page.locator("#position").inner_text().startswith(f"1 of {len(sevens)}")
    site.shot(page, "filtered")
    assert site.errors == []


def test_a_suggestion_queue_accepts_with_enter_keeps_with_shift_k_and_skips_with_the_arrow(site, api, cli, digits):
    token = add_labeler(api, cli, "ana", ("digits",))
    for key, label, score in (("l003", "8", "0.9"), ("l004", "1", "0.8"), ("l005", "6", "0.7")):
        cli.ok("review", "add", "digits", key, "--suggest", label, "--score", score, "--reason", "looks mislabeled", "-Q", "label-errors")
    cli.ok("review", "add", "digits", "u001", "u002", "-Q", "uncertain")
    page = site.page()
    site.sign_in(page, "ana", "/d/digits")
    panel = page.locator("section.panel", has_text="Review queues")
    assert panel.locator("a", has_text="label-errors").get_attribute("href") == "/d/digits/label?branch=work&queue=label-errors"
    assert page.get_by_role("link", name="Label next").first.get_attribute("href").endswith("queue=uncertain")
    site.shot(page, "home")
    panel.locator("a", has_text="label-errors").click()
    page.wait_for_selector("body[data-ready='1']")
    assert shown_key(page) == "l003"
    details = page.locator("#details").inner_text()
    assert "Suggested" in details and "Shift+K keeps 3" in details
    assert page.locator("#labels button.guess").inner_text().startswith("8")  # the suggestion is pre-selected
    site.shot(page, "suggestion")
    page.keyboard.press("Enter")  # accept: staged with its provenance
    until(page, "document.querySelector('#details dd a').textContent === 'l004'")
    page.keyboard.press("ArrowRight")  # skip: nothing staged, still queued
    until(page, "document.querySelector('#details dd a').textContent === 'l005'")
    page.keyboard.press("Shift+K")  # keep: remembered, out of the queue
    until(page, "!window.s2workbench.state.items.some((i) => i.example.key === 'l005' && i.suggestion)")
    assert staged(api, token) == {"l003": "8"}
    left = [i["key"] for i in json.loads(cli.ok("queue", "digits", "--json"))]
    assert left == ["l004"]  # accepted and kept suggestions leave the queue; the skipped one stays
    cli.ok("commit", "digits", "-b", "work", "-m", "the accepted suggestion")
    blame = json.loads(cli.ok("blame", "digits", "l003", "--rev", "work", "--json"))
    assert blame[-1]["label"] == "8" and blame[-1]["author"] == "ana"
    assert blame[-1]["source"] == "suggested by tester@example.com, label-error queue"
    page.goto("/d/digits/examples/l003?rev=work")
    history = page.locator("section.panel", has_text="History of its label").inner_text()
    assert "suggested by tester@example.com, label-error queue" in history
    site.shot(page, "example-history")
    assert site.errors == []


def test_a_consensus_queue_takes_votes_that_stay_hidden_and_stages_the_agreed_label(site, api, cli, digits):
    ana, bo = add_labeler(api, cli, "ana", ("digits",)), add_labeler(api, cli, "bo", ("digits",))
    cli.ok("review", "add", "digits", "u001", "u002", "-Q", "pairs")
    cli.ok("queue", "consensus", "digits", "-Q", "pairs", "--votes", "2", "--branch", "work")
    with api.client(bo) as c:  # bo votes first, over the API
        r = c.post("/datasets/digits/queues/pairs/votes", json={"key": "u001", "label": "4"})
        assert r.status_code == 200 and r.json() == {"key": "u001", "votes": 1, "required": 2, "settled": None}, r.text
    with api.client(ana) as c:  # the queue answers counts and the reader's own vote: no guess, no other labeler's vote
        items = c.get("/datasets/digits/queue", params={"branch": "work", "queue": "pairs"}).json()["items"]
        assert [(i["example"]["key"], i["guess"], i["suggestion"], i["reason"], i["votes"]) for i in items] == [
            ("u001", None, None, None, {"cast": 1, "required": 2, "mine": None}),
            ("u002", None, None, None, {"cast": 0, "required": 2, "mine": None}),
        ]
        r = c.get("/datasets/digits/queue", params={"branch": "work", "queue": "pairs", "predicted": "4"})
        assert r.status_code == 422 and "shows no model guess" in r.text, r.text
    page = site.page()
    open_workbench(site, page, "ana", queue="pairs")
    assert shown_key(page) == "u001"
    details = page.locator("#details").inner_text()
    assert "this queue asks 2 labelers" in details and "4" not in details.split("Your vote")[1].split("Split")[0]  # bo's vote is not shown
    assert "1 of 2 votes in" in details and "none yet" in details.split("Your vote")[1]
    # Labelers judge for themselves: no model guess or top classes (it would anchor them), nothing pre-selected,
    # and no "Why queued — (score 0)" noise; nor a filter on the guess.
    assert page.locator("#details dt").all_inner_texts() == ["Example", "Committed", "Staged", "Votes", "Your vote"]
    assert "Guess" not in details and "model" not in details and "Why queued" not in details and "score" not in details
    assert digits["guess"]["u001"] == "7" and "%" not in page.locator("#labels").inner_text()
    assert page.locator("#labels button.guess").count() == 0 and page.locator("#labels .p:not([hidden])").count() == 0
    assert page.locator("#f-predicted").count() == 0 and page.locator("#f-max").count() == 0
    site.shot(page, "consensus")
    page.keyboard.press("Enter")  # nothing to accept
    until(page, "document.body.textContent.includes('Nothing is pre-selected here')")
    page.keyboard.press("4")  # agrees with bo: staged on work
    until(page, "document.body.textContent.includes('u001: agreed on 4, staged.')")
    assert shown_key(page) == "u002" and "0 of 2 votes in" in page.locator("#details").inner_text()
    page.keyboard.press("7")  # u002: a first vote
    until(page, "document.body.textContent.includes('Voted 7 for u002 (1 of 2 votes).')")
    assert staged(api, ana) == {"u001": "4"}
    page.keyboard.press("ArrowLeft")  # back on u002: its count and ana's own vote
    until(page, "document.querySelector('#details').textContent.includes('1 of 2 votes in')")
    assert page.locator("#details dd").last.inner_text() == "7"
    page.reload()  # from the server: ana's own vote, still not bo's
    page.wait_for_selector("body[data-ready='1']")
    assert shown_key(page) == "u002" and "1 of 2 votes in" in page.locator("#details").inner_text()
    assert page.locator("#details dd").last.inner_text() == "7"
    page.keyboard.press("g")  # the grid: a label's key votes for the selected examples, it stages nothing
    page.wait_for_selector(".grid .tile")
    page.keyboard.press("3")
    until(page, "document.body.textContent.includes('1 vote(s) for 3.')")
    with api.client(ana) as c:
        items = c.get("/datasets/digits/queue", params={"branch": "work", "queue": "pairs"}).json()["items"]
        assert [(i["example"]["key"], i["votes"]) for i in items] == [("u002", {"cast": 1, "required": 2, "mine": "3"})]
    assert staged(api, ana) == {"u001": "4"}
    assert site.errors == []
