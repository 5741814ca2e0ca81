"""The runs pages in real Chromium: the list with states and filters, one run followed live through a real
training by a real worker, a failure with its error, cancel and retry from the page, and what a labeler may see."""

from pathlib import Path

from tests.api.pages.conftest import LABELS, PASSWORD, add_labeler, until
from tests.api.pages.test_access import axe_problems
from tests.factories import write_digits_folder, write_image_csv
from tests.test_training import wait_until

SPEC = {"epochs": 4, "image_size": 8, "image_channels": 1, "batch_size": 32}
EXAMPLES = 900


def add_engineer(api, cli, name: str) -> str:
    """An engineer who can sign in with PASSWORD; returns their token."""
    token = api.add_user(name, "engineer")
    assert cli.run("user", "passwd", name, input=PASSWORD + "\n").returncode == 0
    return token


def failing_spec(folder: Path) -> dict:
    """SPEC with an eval fraction below every key's hash: the worker's check refuses it (an empty eval split)."""
    from trainer.data import key_fraction

    keys = [p.relative_to(folder).as_posix() for p in folder.rglob("*.png")]
    return {**SPEC, "eval_fraction": min(key_fraction(k) for k in keys) / 2}


def watch_page(page) -> None:
    """Record, in the page, every state, epoch and loss-curve size it shows (and mark it, to prove no reload)."""
    page.evaluate(
        """() => {
        window.seen = {states: [], epochs: [], points: []};
        window.sameDocument = true;
        const note = () => {
          const s = window.seen, line = document.querySelector('#loss-svg polyline.train');
          const add = (list, v) => { if (v && list[list.length - 1] !== v) list.push(v); };
          add(s.states, document.querySelector('#run-state').textContent);
          add(s.epochs, document.querySelector('#run-epoch').textContent);
          add(s.points, line ? String(line.getAttribute('points').split(' ').length) : '');
        };
        new MutationObserver(note).observe(document.querySelector('main'), {subtree: true, childList: true, characterData: true});
        note();
      }"""
    )


def test_an_engineer_follows_a_real_run_live_cancels_and_retries(site, api, cli, workers, tmp_path):
    cli.ok("dataset", "create", "digits", "--modality", "image", "--labels", ",".join(LABELS))
    folder = write_digits_folder(tmp_path / "digits", EXAMPLES)
    cli.ok("import", "digits", folder)
    eve = api.client(add_engineer(api, cli, "eve"))
    failing = eve.post("/datasets/digits/runs", json={"spec": failing_spec(folder)}).json()
    good = eve.post("/datasets/digits/runs", json={"spec": SPEC}).json()
    doomed = eve.post("/datasets/digits/runs", json={"spec": SPEC}).json()

    page = site.page()
    site.sign_in(page, "eve", "/runs")
    rows = page.locator("table.runs tbody tr")
    assert rows.count() == 3 and page.locator("table.runs .state-queued").count() == 3
    assert rows.first.locator("th").inner_text() == f"#{doomed['id']}"  # newest first
    assert "eve" in rows.first.inner_text() and good["dataset_commit"][:10] in rows.first.inner_text()
    assert axe_problems(page) == []
    site.shot(page, "list-queued")

    # Cancel a queued run from its page: the state changes in place, and retry takes cancel's place.
    page.goto(f"/runs/{doomed['id']}")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#run-epoch").inner_text() == "Waiting for a worker"
    page.get_by_role("button", name="Cancel run").click()
    until(page, "document.querySelector('#run-state').textContent === 'cancelled'")
    assert page.locator("#cancel-run").is_hidden() and page.locator("#retry-run").is_visible()
    assert eve.get(f"/runs/{doomed['id']}").json()["state"] == "cancelled"

    # Follow a real training live: from queued to succeeded without a reload, the curve gaining points.
    page.goto(f"/runs/{good['id']}")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#run-state").inner_text() == "queued" and page.locator("#run-live").inner_text().startswith("This page follows")
    watch_page(page)
    workers()
    until(page, "document.body.dataset.state === 'running'", timeout=120)
    until(page, "document.querySelector('#loss-svg polyline.train')", timeout=120)
    site.shot(page, "run-live")
    until(page, "document.body.dataset.state === 'succeeded'", timeout=240)
    seen = page.evaluate("() => ({...window.seen, same: window.sameDocument === true})")
    assert seen["same"], "the page reloaded"
    assert seen["states"][0] == "queued" and "running" in seen["states"] and seen["states"][-1] == "succeeded", seen
    assert seen["epochs"][-1] == f"Epoch {SPEC['epochs']} of {SPEC['epochs']}" and len(seen["epochs"]) >= 3, seen
    grew = [int(n) for n in seen["points"] if n]
    assert len(grew) >= 2 and grew == sorted(grew) and grew[-1] > grew[0], seen  # drawn live, point by point
    assert page.locator("#epoch-table tbody tr").count() == SPEC["epochs"]
    assert page.locator("#accuracy-svg circle").count() == SPEC["epochs"]  # the eval metric's curve too
    assert page.locator("#loss-svg title").text_content() == "Training loss by step"
    assert page.locator("#run-model a").get_attribute("href") == "/d/digits/models"
    assert page.locator("#run-model").inner_text() == "digits@1" and page.locator("#run-device").inner_text() != "—"
    assert page.locator("#run-live").inner_text() == "The run has ended: succeeded."
    assert page.locator("#cancel-run").is_hidden() and page.locator("#retry-run").is_hidden()
    assert axe_problems(page) == []
    site.shot(page, "run-succeeded")
    # Reloaded, the server draws the same curve the module drew, and the data engine's pass over the examples.
    drawn = page.locator("#loss-svg polyline.train").get_attribute("points"), page.locator("#loss-svg circle").count()
    run_id = page.url.rsplit("/", 1)[1]  # the worker analyses the model right after the run succeeds
    wait_until(lambda: (eve.get(f"/runs/{run_id}").json().get("analysis") or {}).get("state") == "done", 60, "the model's analysis")
    page.reload()
    assert (
        page.locator("#run-analysis").inner_text().startswith("done; ")
        and "examples scored and ranked" in page.locator("#run-analysis").inner_text()
    )
    assert (page.locator("#loss-svg polyline.train").get_attribute("points"), page.locator("#loss-svg circle").count()) == drawn
    assert page.locator("#loss-svg .axis-title").all_text_contents() == ["step", "loss"]

    # The failed run shows the worker's error and log; retrying it opens the new run of the same commit and spec.
    page.goto(f"/runs/{failing['id']}")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#run-state").inner_text() == "failed"
    assert "the eval split has no labeled examples" in page.locator("#run-error").inner_text()
    assert f"run {failing['id']} failed" in page.locator("#run-log").inner_text()
    assert axe_problems(page) == []
    site.shot(page, "run-failed")
    page.get_by_role("button", name="Retry run").click()
    page.wait_for_url(lambda url: not url.endswith(f"/runs/{failing['id']}"))
    retried = eve.get(f"/runs/{page.url.rsplit('/', 1)[1]}").json()
    assert (retried["dataset_commit"], retried["spec"]) == (failing["dataset_commit"], failing["spec"])
    assert page.locator("h1").inner_text().startswith(f"Run {retried['id']}")

    # The list: every state, a filter, and pages.
    page.goto("/runs")
    states = {t for t in page.locator("table.runs .state").all_inner_texts()}
    assert {"succeeded", "failed", "cancelled"} <= states
    page.select_option("#f-dataset", "digits")
    page.select_option("#f-state", "failed")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/runs?dataset=digits&state=failed")
    assert page.locator("table.runs .state").all_inner_texts() and set(page.locator("table.runs .state").all_inner_texts()) == {"failed"}
    site.shot(page, "list-failed")
    page.goto("/runs?limit=2")
    first = page.locator("table.runs tbody th").all_inner_texts()
    page.get_by_role("link", name="Older runs").click()
    older = page.locator("table.runs tbody th").all_inner_texts()
    assert len(first) == 2 and older and not set(first) & set(older)
    page.goto("/runs")
    assert axe_problems(page) == []
    site.shot(page, "list")

    page.goto("/runs/999999")
    assert "no training run 999999" in page.locator(".error").inner_text()
    assert axe_problems(page) == []
    site.shot(page, "unknown")
    assert site.errors == []
    assert "Traceback" not in api.log()


def test_a_labeler_sees_the_runs_of_their_datasets_only_and_cannot_act(site, api, cli, digits, tmp_path):
    """digits has a run (and model digits@1); birds has one too. The labeler is assigned to digits only."""
    cli.ok("dataset", "create", "birds", "--modality", "image", "--labels", "a,b")
    cli.ok("import", "birds", write_image_csv(tmp_path / "birds", {"x1": "a", "x2": "b"}))
    with api.admin as admin:
        ours = admin.get("/runs", params={"dataset": "digits"}).json()["items"][0]["id"]
        theirs = admin.post("/datasets/birds/runs", json={}).json()["id"]
    add_labeler(api, cli, "ana", ("digits",))
    page = site.page()
    site.sign_in(page, "ana", "/runs")
    assert "Labelers see the runs of the datasets assigned to them" in page.locator(".notice").inner_text()
    assert page.locator("main table").count() == 0
    assert axe_problems(page) == []
    site.shot(page, "labeler-runs")
    page.get_by_role("link", name="Runs of digits").click()
    page.wait_for_url("**/d/digits/runs")
    assert page.locator("table.runs tbody th").all_inner_texts() == [f"#{ours}"]
    assert page.locator("table.runs a[href='/d/digits/models']").inner_text() == "digits@1"
    assert axe_problems(page) == []
    site.shot(page, "labeler-dataset-runs")

    page.goto(f"/runs/{ours}")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#run-state").inner_text() == "succeeded"
    assert page.locator("#cancel-run, #retry-run").count() == 0  # no buttons, not even hidden ones
    assert page.locator("#loss-chart").inner_text() == "This run reported no loss."
    assert axe_problems(page) == []
    site.shot(page, "labeler-run")

    # Another dataset's runs, by any URL: refused, the same way as a run that does not exist.
    for url, says in [
        (f"/runs/{theirs}", "not one of them"),
        ("/d/birds/runs", "not assigned to dataset 'birds'"),
        ("/runs?dataset=birds", "not assigned to dataset 'birds'"),
        ("/runs/999999", "not one of them"),
    ]:
        response = page.goto(url)
        assert response.status == 403 and says in page.locator(".error").inner_text(), url
    assert axe_problems(page) == []
    site.shot(page, "labeler-refused")
    assert site.errors == []
